//! GitHub Actions workflow commands (`::error file=..,line=..::msg`) for failed steps,
//! validation errors, flaky scenarios and perf regressions.

use crate::results::{RunResults, ScenarioResult, Status, TestResult, Verdict};

use super::escape::{clean_text, clip, gh_data, gh_property};
use super::units::perf_row_summary;

/// Bytes kept of one expected/actual value in an annotation: GitHub shows annotations in
/// a small box, the full output is in the job log and the JUnit file.
const VALUE_LIMIT: usize = 512;

/// One workflow command line (with its newline). `line`/`col` are omitted when unknown.
fn command(
    level: &str,
    file: Option<&str>,
    line: Option<u32>,
    col: Option<u32>,
    title: &str,
    message: &str,
) -> String {
    let mut props = Vec::new();
    if let Some(f) = file {
        props.push(format!("file={}", gh_property(f)));
    }
    if let Some(l) = line {
        props.push(format!("line={l}"));
    }
    if let Some(c) = col {
        props.push(format!("col={c}"));
    }
    props.push(format!("title={}", gh_property(&clean_text(title))));
    format!(
        "::{level} {}::{}\n",
        props.join(","),
        gh_data(&clean_text(message))
    )
}

/// An `::error` for a test file that failed to load, pointing at the offending line.
pub fn github_diagnostic(path: &str, line: Option<u32>, col: Option<u32>, message: &str) -> String {
    command(
        "error",
        Some(path),
        line,
        col,
        "clnrm: invalid test file",
        message,
    )
}

/// All annotations for a run, one per line: errors for failing steps (at the step's
/// line), load errors, perf regressions and an aborted run; warnings for flaky scenarios
/// and perf warnings.
pub fn github_annotations(results: &RunResults) -> String {
    let mut out = String::new();
    for e in &results.load_errors {
        out.push_str(&github_diagnostic(&e.path, e.line, e.column, &e.message));
    }
    for test in &results.tests {
        for sc in &test.scenarios {
            scenario_annotations(&mut out, test, sc);
        }
    }
    if let Some(perf) = &results.perf {
        for row in &perf.rows {
            let level = match row.verdict {
                Verdict::Regressed | Verdict::BudgetExceeded => "error",
                Verdict::Warn => "warning",
                _ => continue,
            };
            let file = row.key.split_once('#').map(|(path, _)| path);
            // Point at the scenario when the results still know its line.
            let line = file.and_then(|path| {
                let test = results.tests.iter().find(|t| t.path == path)?;
                Some(test.scenarios.iter().find(|s| s.name == row.scenario)?.line)
            });
            let title = format!("clnrm perf: {}", row.key);
            out.push_str(&command(
                level,
                file,
                line,
                None,
                &title,
                &perf_row_summary(row),
            ));
        }
    }
    if let Some(reason) = &results.aborted {
        out.push_str(&command(
            "error",
            None,
            None,
            None,
            "clnrm: run aborted",
            reason,
        ));
    }
    out
}

fn scenario_annotations(out: &mut String, test: &TestResult, sc: &ScenarioResult) {
    let title = format!("clnrm: {} › {}", test.name, sc.name);
    let path = Some(test.path.as_str());
    if sc.status == Status::Flaky {
        let msg = format!(
            "flaky: passed on attempt {} after {} failed attempt(s)",
            sc.attempts,
            sc.attempts.saturating_sub(1)
        );
        out.push_str(&command("warning", path, Some(sc.line), None, &title, &msg));
        return;
    }
    if !sc.status.is_failure() {
        return;
    }
    let mut any_step = false;
    for step in sc.steps.iter().filter(|s| s.status.is_failure()) {
        any_step = true;
        let mut msg = format!(
            "step `{}` {}: {}",
            step.name,
            step.status.as_str(),
            step.command
        );
        if let Some(code) = step.exit_code {
            msg.push_str(&format!(" (exit code {code})"));
        }
        for f in &step.failures {
            msg.push_str(&format!(
                "\n{}: expected {}, got {}",
                f.expectation,
                clip(&f.expected, VALUE_LIMIT),
                clip(&f.actual, VALUE_LIMIT)
            ));
        }
        out.push_str(&command("error", path, Some(step.line), None, &title, &msg));
    }
    if !any_step {
        let msg = sc
            .message
            .clone()
            .unwrap_or_else(|| format!("scenario {}", sc.status.as_str()));
        out.push_str(&command("error", path, Some(sc.line), None, &title, &msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn snapshot_mixed_with_perf() {
        let mut r = fixtures::with_perf();
        r.aborted = Some("SIGINT".to_string());
        insta::assert_snapshot!("annotations_mixed", github_annotations(&r));
    }

    #[test]
    fn diagnostic_escapes_per_github_rules() {
        assert_eq!(
            github_diagnostic("dir,x/a:b.toml", Some(3), Some(7), "100% bad\r\nnext"),
            "::error file=dir%2Cx/a%3Ab.toml,line=3,col=7,title=clnrm%3A invalid test file::100%25 bad%0Anext\n"
        );
        assert_eq!(
            github_diagnostic("a.toml", None, None, "m"),
            "::error file=a.toml,title=clnrm%3A invalid test file::m\n"
        );
    }

    #[test]
    fn hostile_output_cannot_inject_commands() {
        let out = github_annotations(&fixtures::hostile());
        // One command per line: newlines in test text are encoded, never emitted.
        assert_eq!(out.lines().count(), 1);
        assert!(out.starts_with("::error file=tests/evil.clnrm.toml,line=7,title="));
        assert!(!out.contains('\u{1b}'));
        assert!(out.len() < 4096, "{} bytes", out.len());
    }
}
