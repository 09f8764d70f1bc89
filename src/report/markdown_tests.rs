//! Tests of the markdown reporter: snapshot, hostile text, size caps.

use super::*;
use crate::report::fixtures;

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
        "### ✅ clnrm: passed: 1 passed in 4.32 s\n\n\
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
