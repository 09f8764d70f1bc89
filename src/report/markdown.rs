//! Markdown job summary: verdict line, failed-first table, perf section, collapsible
//! details of failing steps; every piece of test text escaped, the whole capped in size.

use crate::results::{
    PerfRow, PerfSummary, RunResults, ScenarioResult, Status, TestResult, Verdict,
};

use super::escape::{clip, md_code, md_fenced, md_html, md_inline};
use super::units::{bytes_human, counts, duration, duration_precise, verdict};

/// GitHub's limit for one step's job summary (`$GITHUB_STEP_SUMMARY`).
pub const GITHUB_SUMMARY_LIMIT: usize = 1024 * 1024;

/// Bytes kept free for the note that says the summary was cut.
const NOTE_RESERVE: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// Cap on the whole document, bytes.
    pub max_bytes: usize,
    /// Cap on each output block (one stream of one failing step), bytes.
    pub max_output_bytes: usize,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        Self {
            max_bytes: GITHUB_SUMMARY_LIMIT,
            max_output_bytes: 16 * 1024,
        }
    }
}

/// A self-contained piece of the document (it never leaves a table cell, fence or
/// `<details>` open), so dropping some blocks keeps the page well-formed.
struct Block {
    text: String,
    /// 0 is kept first; blocks that do not fit in what remains are left out.
    priority: u8,
}

/// Render the job summary. When everything does not fit in `opts.max_bytes`, blocks are
/// kept by importance (verdict, failing rows, perf, failure details, then passing rows)
/// and a note at the end says how many were left out.
pub fn markdown(results: &RunResults, opts: &MarkdownOptions) -> String {
    let mut blocks = Vec::new();
    let mut push = |priority: u8, text: String| blocks.push(Block { text, priority });

    let (word, ok) = verdict(results);
    let mark = if ok { "✅" } else { "❌" };
    let shard = results
        .shard
        .as_ref()
        .map(|s| format!(" (shard {}/{})", s.index, s.count))
        .unwrap_or_default();
    push(
        0,
        format!(
            "### {mark} clnrm {word}{shard}: {} in {}\n\n",
            counts(&results.totals()),
            duration(results.duration_ms)
        ),
    );
    if let Some(reason) = &results.aborted {
        push(0, format!("> **Run aborted:** {}\n\n", md_inline(reason)));
    }
    if !results.missing_shards.is_empty() {
        let list: Vec<String> = results.missing_shards.iter().map(u32::to_string).collect();
        push(
            0,
            format!(
                "> **Incomplete:** no results from shard{} {}; their tests are not in this report.\n\n",
                super::plural(results.missing_shards.len()),
                list.join(", ")
            ),
        );
    }
    if results.empty_shard {
        if let Some(s) = &results.shard {
            push(
                0,
                format!(
                    "> Shard {}/{} was given none of the selected tests.\n\n",
                    s.index, s.count
                ),
            );
        }
    }

    if !results.load_errors.is_empty() {
        push(0, "#### Test files that failed to load\n\n".to_string());
        for e in &results.load_errors {
            let loc = match (e.line, e.column) {
                (Some(l), Some(c)) => format!("{}:{l}:{c}", e.path),
                (Some(l), None) => format!("{}:{l}", e.path),
                _ => e.path.clone(),
            };
            push(
                1,
                format!("- {}: {}\n", md_inline(&loc), md_inline(&e.message)),
            );
        }
        push(1, "\n".to_string());
    }

    let mut rows: Vec<(&TestResult, &ScenarioResult)> = results
        .tests
        .iter()
        .flat_map(|t| t.scenarios.iter().map(move |s| (t, s)))
        .collect();
    // Stable sort: within a status rank the file order is kept.
    rows.sort_by_key(|(_, s)| status_rank(s.status));
    if !rows.is_empty() {
        push(
            0,
            "| Test | Scenario | Status | Duration |\n|---|---|---|---:|\n".to_string(),
        );
        for (t, s) in &rows {
            let priority = match s.status {
                st if st.is_failure() => 1,
                Status::Flaky => 2,
                _ => 4,
            };
            push(
                priority,
                format!(
                    "| {} | {} | {} | {} |\n",
                    md_inline(&t.name),
                    md_inline(&s.name),
                    status_cell(s),
                    if s.status == Status::Skipped {
                        "-".to_string()
                    } else {
                        duration(s.duration_ms)
                    }
                ),
            );
        }
        push(0, "\n".to_string());
    }

    if let Some(perf) = &results.perf {
        perf_section(perf, &mut push);
    }

    telemetry_section(&rows, &mut push);

    let failing: Vec<_> = rows.iter().filter(|(_, s)| s.status.is_failure()).collect();
    if !failing.is_empty() {
        push(1, "#### Failures\n\n".to_string());
        for (t, s) in failing {
            push(3, details(t, s, opts));
        }
    }

    assemble(blocks, opts.max_bytes)
}

/// Spans per scenario, when the run collected any: count, errors, failed expectations and the
/// saved trace (the failed expectations themselves, with the nearest matching spans, are in
/// the scenario's details under Failures).
fn telemetry_section(rows: &[(&TestResult, &ScenarioResult)], push: &mut impl FnMut(u8, String)) {
    let with: Vec<_> = rows
        .iter()
        .filter_map(|(t, s)| s.telemetry.as_ref().map(|tel| (t, s, tel)))
        .collect();
    if with.is_empty() {
        return;
    }
    push(
        1,
        "#### Telemetry\n\n| Test | Scenario | Spans | Errors | Failed checks | Trace |\n|---|---|---:|---:|---:|---|\n"
            .to_string(),
    );
    for (t, s, tel) in with {
        let priority = if tel.failed_expectations > 0 { 1 } else { 3 };
        let spans = if tel.dropped > 0 {
            format!("{} (+{} dropped)", tel.spans, tel.dropped)
        } else {
            tel.spans.to_string()
        };
        push(
            priority,
            format!(
                "| {} | {} | {spans} | {} | {} | {} |\n",
                md_inline(&t.name),
                md_inline(&s.name),
                tel.errors,
                if tel.failed_expectations > 0 {
                    format!("❌ {}", tel.failed_expectations)
                } else {
                    "0".to_string()
                },
                tel.file.as_deref().map_or_else(|| "-".to_string(), md_code),
            ),
        );
    }
    push(1, "\n".to_string());
}

fn assemble(blocks: Vec<Block>, max_bytes: usize) -> String {
    let mut budget = max_bytes.saturating_sub(NOTE_RESERVE);
    let mut keep = vec![false; blocks.len()];
    for priority in 0..=4 {
        for (i, b) in blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.priority == priority)
        {
            if b.text.len() > budget {
                // Stop this class here rather than leave holes in a table.
                break;
            }
            budget -= b.text.len();
            keep[i] = true;
        }
    }
    let omitted = keep.iter().filter(|k| !**k).count();
    let mut out: String = blocks
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(b, _)| b.text.as_str())
        .collect();
    if omitted > 0 {
        out.push_str(&format!(
            "\n> **Note:** this summary was cut to fit {} (the job summary limit): {omitted} \
             rows or sections were left out. The JUnit and JSON reports have everything.\n",
            bytes_human(max_bytes)
        ));
    }
    out
}

/// Failed first, then flaky, then the rest: what needs a look comes first.
fn status_rank(s: Status) -> u8 {
    match s {
        Status::Failed | Status::TimedOut | Status::Error => 0,
        Status::Flaky => 1,
        Status::Passed => 2,
        Status::Skipped => 3,
    }
}

fn status_cell(s: &ScenarioResult) -> String {
    match s.status {
        st if st.is_failure() => format!("❌ {}", st.as_str()),
        Status::Passed => "✅ passed".to_string(),
        Status::Flaky => format!("flaky ({} attempts)", s.attempts),
        st => st.as_str().to_string(),
    }
}

fn perf_section(perf: &PerfSummary, push: &mut impl FnMut(u8, String)) {
    let mut head = format!("#### Performance vs {}\n\n", md_inline(&perf.baseline_path));
    head.push_str(&format!(
        "Gate: **{}**.",
        if perf.failed { "failed" } else { "passed" }
    ));
    if let Some(f) = perf.speed_factor {
        head.push_str(&format!(
            " Runner speed factor ×{f:.3} ({}), removed from the normalised ratios.",
            md_inline(perf.speed_verdict.as_str())
        ));
    }
    head.push_str(
        "\n\n| Scenario | Baseline | Now | Ratio (normalised) | MDE | Verdict | Fingerprint |\n",
    );
    head.push_str("|---|---:|---:|---:|---:|---|---|\n");
    push(1, head);
    let mut rows: Vec<&PerfRow> = perf.rows.iter().collect();
    rows.sort_by_key(|r| r.verdict);
    for r in rows {
        let ratio = match (r.ratio, r.normalised_ratio) {
            (Some(a), Some(n)) => format!("{a:.3} ({n:.3})"),
            (Some(a), None) => format!("{a:.3}"),
            _ => "-".to_string(),
        };
        let arrow = match r.verdict {
            Verdict::Regressed | Verdict::BudgetExceeded | Verdict::Warn => "▲ ",
            Verdict::Improved => "▼ ",
            _ => "",
        };
        let mut verdict = format!("{arrow}{}", md_inline(r.verdict.as_str()));
        if let Some(b) = r.budget_ms {
            verdict.push_str(&format!(" (budget {})", duration_precise(b)));
        }
        if r.low_resolution {
            verdict.push_str(" (below timer resolution)");
        }
        if let Some(n) = &r.note {
            verdict.push_str(&format!(" ({})", md_inline(n)));
        }
        push(
            1,
            format!(
                "| {} | {} | {} | {ratio} | {} | {verdict} | {} |\n",
                md_inline(&r.key),
                r.baseline_ms
                    .map(duration_precise)
                    .unwrap_or_else(|| "-".to_string()),
                duration_precise(r.current_ms),
                r.mde
                    .map(|m| format!("±{:.1} %", m * 100.0))
                    .unwrap_or_else(|| "-".to_string()),
                if r.fingerprint_match {
                    "match"
                } else {
                    "differs"
                }
            ),
        );
    }
    let notes: String = perf
        .notes
        .iter()
        .map(|n| format!("- {}\n", md_inline(n)))
        .collect();
    push(
        1,
        format!("\n{notes}{}", if notes.is_empty() { "" } else { "\n" }),
    );
}

/// A collapsed `<details>` with the failing step, its expectations and its output.
fn details(t: &TestResult, s: &ScenarioResult, opts: &MarkdownOptions) -> String {
    let step = s.steps.iter().find(|st| st.status.is_failure());
    let line = step.map_or(s.line, |st| st.line);
    let what = match step {
        Some(st) => format!("step {} {}", st.name, st.status.as_str()),
        None => s.status.as_str().to_string(),
    };
    let mut out = format!(
        "<details><summary>❌ {} › {}: {} ({}:{line})</summary>\n\n",
        md_html(&t.name),
        md_html(&s.name),
        md_html(&what),
        md_html(&t.path)
    );
    if let Some(m) = &s.message {
        out.push_str(&format!("{}\n\n", md_inline(m)));
    }
    if let Some(tel) = &s.telemetry {
        out.push_str(&format!(
            "Telemetry: {}.\n\n",
            md_inline(&super::junit::telemetry_summary(tel))
        ));
    }
    let Some(st) = step else {
        out.push_str("</details>\n\n");
        return out;
    };
    let exit = st
        .exit_code
        .map(|c| format!(", exit code {c}"))
        .unwrap_or_default();
    out.push_str(&format!(
        "Command {} on service {}{exit}, {}.\n\n",
        md_code(&st.command),
        md_code(&st.service),
        duration(st.duration_ms)
    ));
    if !st.failures.is_empty() {
        let body: String = st
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{}\n  expected: {}\n  actual:   {}\n",
                    f.expectation,
                    clip(&f.expected, opts.max_output_bytes),
                    clip(&f.actual, opts.max_output_bytes)
                )
            })
            .collect();
        out.push_str(&format!("**Expectations**\n\n{}\n", md_fenced(&body)));
    }
    for (name, text, cut) in [
        ("stdout", &st.stdout, st.stdout_truncated),
        ("stderr", &st.stderr, st.stderr_truncated),
    ] {
        if text.is_empty() {
            continue;
        }
        let mut body = clip(text, opts.max_output_bytes).into_owned();
        if cut {
            body.push_str("\n[truncated at capture]\n");
        }
        out.push_str(&format!("**{name}**\n\n{}\n", md_fenced(&body)));
    }
    out.push_str("</details>\n\n");
    out
}

#[cfg(test)]
#[path = "markdown_tests.rs"]
mod tests;
