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

/// GitHub shows at most this many annotations of each level per step (and drops the rest).
pub const STEP_ANNOTATION_LIMIT: usize = 10;

/// All annotations for a run, one per line: errors for failing steps (at the step's
/// line), load errors, perf regressions and an aborted run; warnings for flaky scenarios
/// and perf warnings.
pub fn github_annotations(results: &RunResults) -> String {
    github_step_annotations(results, "", usize::MAX)
}

/// The annotations of one workflow step: file paths prefixed with `path_prefix` (where the
/// run's paths start, relative to the repository root, e.g. `services/api/`, so GitHub can
/// place them), and at most `limit` per level; the rest are counted in one closing notice.
pub fn github_step_annotations(results: &RunResults, path_prefix: &str, limit: usize) -> String {
    let mut out = String::new();
    let prefixed;
    let results = if path_prefix.is_empty() {
        results
    } else {
        prefixed = with_path_prefix(results, path_prefix);
        &prefixed
    };
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
    within_limit(&out, limit)
}

/// The results with every test and load-error path (and perf key) under `prefix`.
fn with_path_prefix(results: &RunResults, prefix: &str) -> RunResults {
    let mut r = results.clone();
    for t in &mut r.tests {
        t.path = format!("{prefix}{}", t.path);
    }
    for e in &mut r.load_errors {
        e.path = format!("{prefix}{}", e.path);
    }
    if let Some(perf) = &mut r.perf {
        for row in &mut perf.rows {
            if row.key.contains('#') {
                row.key = format!("{prefix}{}", row.key);
            }
        }
    }
    r
}

/// Keep the first `limit` commands of each level (`::error`, `::warning`, `::notice`); one
/// notice says how many of each were left out, and where to read them.
fn within_limit(all: &str, limit: usize) -> String {
    let mut kept = String::new();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for line in all.split_inclusive('\n') {
        let level = line
            .strip_prefix("::")
            .and_then(|l| l.split([' ', ':']).next())
            .unwrap_or("");
        let n = match seen.iter_mut().find(|(l, _)| *l == level) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((level, 1));
                1
            }
        };
        if n <= limit {
            kept.push_str(line);
        }
    }
    let cut: Vec<String> = seen
        .iter()
        .filter(|(_, n)| *n > limit)
        .map(|(level, n)| {
            let what = match *level {
                "error" => "error",
                "warning" => "warning",
                _ => "notice",
            };
            let n = n - limit;
            format!("{n} more {what}{}", super::plural(n))
        })
        .collect();
    if !cut.is_empty() {
        kept.push_str(&command(
            "notice",
            None,
            None,
            None,
            "clnrm: more annotations",
            &format!(
                "{} not annotated (GitHub shows {limit} of each kind per step); every failure is in the job log, the JUnit report and the job summary",
                cut.join(" and ")
            ),
        ));
    }
    kept
}

fn scenario_annotations(out: &mut String, test: &TestResult, sc: &ScenarioResult) {
    let title = format!("clnrm: {} › {}", test.name, sc.name);
    let path = Some(test.path.as_str());
    if sc.status == Status::Flaky {
        let failed = sc.attempts.saturating_sub(1) as usize;
        let msg = format!(
            "flaky: passed on attempt {} after {failed} failed attempt{}",
            sc.attempts,
            super::plural(failed)
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
    fn step_annotations_are_limited_per_level_and_prefixed() {
        let mut r = fixtures::with_perf();
        r.aborted = Some("SIGINT".to_string());
        let all = github_annotations(&r);
        let errors = all.lines().filter(|l| l.starts_with("::error")).count();
        let warnings = all.lines().filter(|l| l.starts_with("::warning")).count();
        assert!(errors > 2 && warnings >= 1, "{all}");
        let step = github_step_annotations(&r, "sub/dir/", 2);
        let lines: Vec<&str> = step.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.starts_with("::error")).count(), 2);
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("::warning")).count(),
            warnings.min(2)
        );
        let last = lines.last().unwrap();
        assert!(
            last.starts_with("::notice title=clnrm%3A more annotations::"),
            "{last}"
        );
        let more = errors - 2;
        assert!(last.contains(&format!("{more} more errors")), "{last}");
        assert!(
            lines
                .iter()
                .filter(|l| l.contains("file="))
                .all(|l| l.contains("file=sub/dir/tests/")),
            "{step}"
        );
        // Within the limit nothing is summarised.
        assert_eq!(github_step_annotations(&r, "", usize::MAX), all);
        assert!(!all.contains("more annotations"));
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
