//! Tests of the markdown reporter: snapshot, hostile text, size caps.

use std::process::Command;

use super::*;
use crate::report::fixtures;

/// Render with cmark-gfm (PyPI `cmarkgfm`); `None` with the reason printed when it is not
/// installed outside CI. In CI (`CI=true`) a missing renderer is a failure.
fn gfm_html(md: &str) -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("summary.md");
    std::fs::write(&path, md).expect("write markdown");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report/render_gfm.py"
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = match Command::new("python3").arg(script).arg(&path).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(
                !in_ci,
                "python3 is required in CI for the GFM render check: {e}"
            );
            eprintln!("skipping GFM render check: python3 not runnable: {e}");
            return None;
        }
    };
    if out.status.code() == Some(3) {
        assert!(!in_ci, "cmarkgfm is required in CI: pip install cmarkgfm");
        eprintln!("skipping GFM render check: cmarkgfm missing (pip install cmarkgfm)");
        return None;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("utf-8 html"))
}

#[test]
fn snapshot_mixed_with_perf() {
    insta::assert_snapshot!(
        "markdown_mixed",
        markdown(&fixtures::with_perf(), &MarkdownOptions::default())
    );
}

#[test]
fn passing_run_is_one_line_and_a_table() {
    let r = fixtures::results(vec![fixtures::test(
        "one",
        vec![fixtures::scenario(
            "only",
            1,
            Status::Passed,
            5.0,
            Vec::new(),
        )],
    )]);
    assert_eq!(
        markdown(&r, &MarkdownOptions::default()),
        "### ✅ clnrm passed: 1 passed in 4.32 s\n\n\
         | Test | Scenario | Status | Duration |\n|---|---|---|---:|\n\
         | one | only | ✅ passed | 5.0 ms |\n\n"
    );
}

/// The document with fenced blocks removed: what GitHub renders as markdown and HTML.
fn outside_fences(md: &str) -> String {
    let mut out = String::new();
    let mut open: Option<usize> = None;
    for line in md.lines() {
        let ticks = line.chars().take_while(|c| *c == '`').count();
        match open {
            None if ticks >= 3 => open = Some(ticks),
            Some(n) if ticks >= n && line.trim_start_matches('`').trim().is_empty() => open = None,
            None => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    assert_eq!(open, None, "unclosed fence");
    out
}

#[test]
fn hostile_text_cannot_break_the_page_or_ping() {
    let md = markdown(&fixtures::hostile(), &MarkdownOptions::default());
    let rendered = outside_fences(&md);
    // Only our own HTML: one details block, no raw test markup.
    assert_eq!(rendered.matches("<details>").count(), 1);
    assert_eq!(rendered.matches("</details>").count(), 1, "{rendered}");
    assert!(!rendered.contains("<script>"), "{rendered}");
    // `<b>` survives only inside the command's code span, where it is literal text.
    assert_eq!(rendered.matches("<b>").count(), 1);
    assert!(rendered.contains("Command ``sh -c 'evil `step` | <b>'`` on service `app`"));
    assert!(!rendered.contains("@org") && !rendered.contains("@here"));
    assert!(!rendered.contains("#123") && !rendered.contains("#1 "));
    assert!(!md.contains('\u{1b}') && !md.contains('\u{0}'));
    // Table row: the pipes and backticks of the names are escaped, 4 cells exactly.
    let row = md.lines().find(|l| l.starts_with("| evil")).expect("row");
    assert_eq!(row.replace("\\|", "").matches('|').count(), 5, "{row}");
    assert!(
        row.contains("pipe \\| \\`tick\\` &lt;/details&gt;"),
        "{row}"
    );
    // The output fence outgrows the 4-backtick run inside it and keeps the text verbatim.
    assert!(
        md.contains("\n`````text\na | b | c\n```\n````\n</details>\n<script>"),
        "{md}"
    );
    // 10 MB of stderr is cut per block with a note.
    assert!(md.contains("[... truncated: 10.0 MiB cut ...]"));
    assert!(md.len() < 64 * 1024, "{} bytes", md.len());
}

#[test]
fn hostile_summary_renders_safely_with_cmark_gfm() {
    let md = markdown(&fixtures::hostile(), &MarkdownOptions::default());
    let Some(html) = gfm_html(&md) else { return };
    assert_eq!(html.matches("<details>").count(), 1, "{html}");
    assert_eq!(html.matches("</details>").count(), 1, "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    // Header row and one body row, each with exactly four cells.
    assert_eq!(html.matches("<tr>").count(), 2, "{html}");
    assert_eq!(html.matches("<td").count(), 4, "{html}");
    assert!(
        html.contains("<td>pipe | `tick` &lt;/details&gt; @\u{200D}org/team #\u{200D}1</td>"),
        "{html}"
    );
    // The hostile output is shown verbatim (escaped) inside a code block.
    assert!(html.contains("a | b | c\n```\n````\n&lt;/details&gt;\n&lt;script&gt;alert(1)&lt;/script&gt;\n@org/team"), "{html}");
}

#[test]
fn size_cap_keeps_failures_and_notes_the_cut() {
    let mut r = fixtures::mixed();
    let template = r.tests[0].scenarios[0].clone();
    for i in 0..5000 {
        let mut s = template.clone();
        s.name = format!("passing scenario number {i}");
        r.tests[0].scenarios.push(s);
    }
    let opts = MarkdownOptions {
        max_bytes: 20_000,
        ..MarkdownOptions::default()
    };
    let md = markdown(&r, &opts);
    assert!(md.len() <= 20_000, "{} bytes", md.len());
    assert!(md.contains("| api | create user | ❌ failed |"));
    assert!(md.contains("<summary>❌ api › create user"));
    assert!(md.contains("rows or sections were left out"), "{md}");
    assert!(!md.contains("passing scenario number 4999"));
    let full = markdown(&r, &MarkdownOptions::default());
    assert!(full.contains("passing scenario number 4999"));
    assert!(!full.contains("left out"));
}

#[test]
fn telemetry_table_lists_spans_errors_and_failed_checks() {
    let md = markdown(&fixtures::with_telemetry(), &MarkdownOptions::default());
    assert!(
        md.contains(
            "#### Telemetry\n\n| Test | Scenario | Spans | Errors | Failed checks | Trace |\n"
        ),
        "{md}"
    );
    assert!(
        md.contains("| api | create user | 2 (+3 dropped) | 1 | ❌ 1 | `out/spans/api/create_user.otlp.jsonl` |\n"),
        "{md}"
    );
    assert!(
        md.contains("| api | health | 4 | 0 | 0 | `out/spans/api/health.otlp.jsonl` |\n"),
        "{md}"
    );
    // The failed scenario's details carry the summary next to its failed expectations.
    assert!(
        md.contains("Telemetry: 2 spans, 1 error, 1 failed expectation"),
        "{md}"
    );
    let Some(html) = gfm_html(&md) else {
        return;
    };
    assert!(html.contains("<h4>Telemetry</h4>"), "{html}");
    assert!(
        html.contains("<td><code>out/spans/api/create_user.otlp.jsonl</code></td>"),
        "{html}"
    );
    // Without telemetry there is no such section.
    let plain = markdown(&fixtures::mixed(), &MarkdownOptions::default());
    assert!(!plain.contains("Telemetry"), "{plain}");
}
