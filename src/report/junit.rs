//! JUnit XML as the report actions read it, written with quick-junit (nextest's writer).
//!
//! One testsuite per test file (`file` attribute), one testcase per scenario with `file` and
//! `line` (the failing step's line when a step failed, else the scenario's), failures with
//! the step, expectation, expected vs actual and `file:line`, outputs in system-out/err.
//! Retries follow surefire: a scenario that passed on a retry is a passing testcase with one
//! `<flakyFailure>` per failed attempt, one that never passed has one `<rerunFailure>` per
//! earlier attempt, each with that attempt's own output. An aborted run adds no testcase: its
//! reason is a property and the system-err of the `clnrm run` testsuite.

use std::time::Duration;

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use crate::results::{
    AttemptResult, PerfRow, RunResults, ScenarioResult, ScenarioTelemetry, Status, StepResult,
    TestResult,
};

use super::error::ReportError;
use super::escape::{clean_text, clip};
use super::units::{bytes_human, perf_row_summary};

/// Bytes of stdout (and, separately, stderr) kept per testcase or attempt.
pub const JUNIT_OUTPUT_LIMIT: usize = 64 * 1024;
/// Bytes kept of one expected/actual value inside a failure body.
const VALUE_LIMIT: usize = 4 * 1024;
/// Bytes kept of one expected/actual value inside the one-line `message` attribute.
const MESSAGE_VALUE_LIMIT: usize = 200;

/// Name of the testsuite that holds one failing testcase per test file that did not load.
pub const LOAD_SUITE: &str = "clnrm load";
/// Name of the testsuite that says why a run was aborted (property and system-err, no
/// testcase: the scenarios it did not run are skipped testcases of their own suites).
pub const RUN_SUITE: &str = "clnrm run";
/// Name of the testsuite whose properties carry the run-level perf gate result.
pub const PERF_SUITE: &str = "clnrm perf";

/// Render `results` as JUnit XML.
pub fn junit(results: &RunResults) -> Result<Vec<u8>, ReportError> {
    let timestamp = timestamp(&results.started_at);
    let mut report = Report::new("clnrm");
    report.set_time(millis(results.duration_ms));

    for test in &results.tests {
        let mut suite = new_suite(&test.name, timestamp);
        suite
            .extra
            .insert("file".into(), attr_text(&test.path).into());
        for sc in &test.scenarios {
            suite.add_test_case(testcase(test, sc));
            // The Jenkins schema has no properties on a testcase: the per-scenario span
            // summary is a suite property (and a line of the testcase's system-out).
            if let Some(t) = &sc.telemetry {
                suite.add_property(property(
                    &format!("clnrm.spans.{}", sc.name),
                    &telemetry_summary(t),
                ));
            }
        }
        suite.set_time(millis(test.scenarios.iter().map(|s| s.duration_ms).sum()));
        for row in results
            .perf
            .iter()
            .flat_map(|p| p.rows.iter())
            .filter(|row| row_belongs_to(row, test))
        {
            suite.add_property(property(
                &format!("clnrm.perf.{}", row.scenario),
                &perf_row_summary(row),
            ));
        }
        report.add_test_suite(with_skipped(suite));
    }

    if !results.load_errors.is_empty() {
        let mut suite = new_suite(LOAD_SUITE, timestamp);
        for e in &results.load_errors {
            let location = location(&e.path, e.line, e.column);
            let first_line = e.message.lines().next().unwrap_or_default();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_type("load-error")
                .set_message(attr_text(&format!("{location}: {first_line}")))
                .set_description(body_text(&format!("{location}: {}", e.message)));
            let mut tc = TestCase::new(attr_text(&e.path), status);
            tc.set_classname(LOAD_SUITE).set_time(Duration::ZERO);
            set_location(&mut tc, &e.path, e.line);
            suite.add_test_case(tc);
        }
        suite.set_time(Duration::ZERO);
        report.add_test_suite(with_skipped(suite));
    }

    if let Some(reason) = &results.aborted {
        let mut suite = new_suite(RUN_SUITE, timestamp);
        suite.add_property(property("clnrm.run.aborted", reason));
        suite.set_system_err(body_text(&format!("run aborted: {reason}\n")));
        suite.set_time(Duration::ZERO);
        report.add_test_suite(with_skipped(suite));
    }

    if let Some(perf) = &results.perf {
        let mut suite = new_suite(PERF_SUITE, timestamp);
        suite.add_property(property("clnrm.perf.baseline", &perf.baseline_path));
        suite.add_property(property("clnrm.perf.failed", &perf.failed.to_string()));
        suite.add_property(property(
            "clnrm.perf.speed_verdict",
            &perf.speed_verdict.to_string(),
        ));
        if let Some(f) = perf.speed_factor {
            suite.add_property(property("clnrm.perf.speed_factor", &format!("{f:.3}")));
        }
        for row in perf
            .rows
            .iter()
            .filter(|r| !results.tests.iter().any(|t| row_belongs_to(r, t)))
        {
            suite.add_property(property(
                &format!("clnrm.perf.{}", row.key),
                &perf_row_summary(row),
            ));
        }
        for (i, note) in perf.notes.iter().enumerate() {
            suite.add_property(property(&format!("clnrm.perf.note.{}", i + 1), note));
        }
        suite.set_time(Duration::ZERO);
        report.add_test_suite(with_skipped(suite));
    }

    let mut out = Vec::new();
    report.serialize(&mut out)?;
    Ok(out)
}

fn new_suite(name: &str, timestamp: Option<chrono::DateTime<chrono::FixedOffset>>) -> TestSuite {
    let mut suite = TestSuite::new(attr_text(name));
    if let Some(t) = timestamp {
        suite.set_timestamp(t);
    }
    suite
}

/// quick-junit counts skipped testcases as `disabled`; JUnit consumers read `skipped`.
fn with_skipped(mut suite: TestSuite) -> TestSuite {
    let skipped = suite.disabled.to_string();
    suite.extra.insert("skipped".into(), skipped.into());
    suite
}

fn property(name: &str, value: &str) -> Property {
    Property::new(attr_text(name), attr_text(value))
}

fn set_location(tc: &mut TestCase, path: &str, line: Option<u32>) {
    tc.extra.insert("file".into(), attr_text(path).into());
    if let Some(line) = line {
        tc.extra.insert("line".into(), line.to_string().into());
    }
}

/// Perf rows are keyed `path#scenario`; `test` (the test name) is the fallback.
fn row_belongs_to(row: &PerfRow, test: &TestResult) -> bool {
    match row.key.split_once('#') {
        Some((path, _)) => path == test.path,
        None => !row.key.starts_with("phase:") && row.test == test.name,
    }
}

fn testcase(test: &TestResult, sc: &ScenarioResult) -> TestCase {
    let failing = sc.steps.iter().find(|s| s.status.is_failure());
    let reruns = sc
        .previous_attempts
        .iter()
        .map(|a| rerun(test, sc, a))
        .collect::<Vec<_>>();
    let status = match sc.status {
        Status::Passed | Status::Flaky => TestCaseStatus::Success { flaky_runs: reruns },
        Status::Skipped => {
            let mut st = TestCaseStatus::skipped();
            if let Some(m) = &sc.message {
                st.set_type("skipped").set_message(attr_text(m));
            }
            st
        }
        Status::Failed | Status::TimedOut | Status::Error => {
            let (type_, message, body) =
                failure_text(test, sc.line, sc.status, &sc.message, failing);
            let mut st = TestCaseStatus::non_success(kind(sc.status));
            st.set_type(type_)
                .set_message(message)
                .set_description(body)
                .add_reruns(reruns);
            st
        }
    };
    let mut tc = TestCase::new(attr_text(&sc.name), status);
    tc.set_classname(attr_text(&test.name))
        .set_time(millis(sc.duration_ms));
    set_location(
        &mut tc,
        &test.path,
        Some(failing.map_or(sc.line, |s| s.line)),
    );

    let mut out = String::new();
    if sc.status == Status::Flaky {
        let failed = sc.attempts.saturating_sub(1) as usize;
        out.push_str(&format!(
            "clnrm: flaky, passed on attempt {} after {failed} failed {}\n",
            sc.attempts,
            plural(failed, "attempt", "attempts")
        ));
    }
    if let Some(t) = &sc.telemetry {
        out.push_str(&format!("clnrm: telemetry: {}\n", telemetry_summary(t)));
    }
    out.push_str(&step_streams(&sc.steps, |s| {
        (&s.stdout, s.stdout_truncated)
    }));
    if !out.is_empty() {
        tc.set_system_out(body_text(&clip(&out, JUNIT_OUTPUT_LIMIT)));
    }
    let err = step_streams(&sc.steps, |s| (&s.stderr, s.stderr_truncated));
    if !err.is_empty() {
        tc.set_system_err(body_text(&clip(&err, JUNIT_OUTPUT_LIMIT)));
    }
    tc
}

/// One earlier attempt as a `<flakyFailure>` / `<rerunFailure>` (or `...Error`), with that
/// attempt's failure in `<stackTrace>` and its own output.
fn rerun(test: &TestResult, sc: &ScenarioResult, a: &AttemptResult) -> TestRerun {
    let failing = a.steps.iter().find(|s| s.status.is_failure());
    let (type_, message, body) = failure_text(test, sc.line, a.status, &a.message, failing);
    let mut r = TestRerun::new(kind(a.status));
    r.set_type(type_)
        .set_message(format!("attempt {}: {message}", a.attempt))
        .set_stack_trace(body);
    let out = step_streams(&a.steps, |s| (&s.stdout, s.stdout_truncated));
    if !out.is_empty() {
        r.set_system_out(body_text(&clip(&out, JUNIT_OUTPUT_LIMIT)));
    }
    let err = step_streams(&a.steps, |s| (&s.stderr, s.stderr_truncated));
    if !err.is_empty() {
        r.set_system_err(body_text(&clip(&err, JUNIT_OUTPUT_LIMIT)));
    }
    r
}

/// `12 spans, 1 error, 0 failed expectations, saved to spans/a.otlp.jsonl`.
pub(crate) fn telemetry_summary(t: &ScenarioTelemetry) -> String {
    let mut out = format!(
        "{} {}, {} {}, {} failed {}",
        t.spans,
        plural(t.spans, "span", "spans"),
        t.errors,
        plural(t.errors, "error", "errors"),
        t.failed_expectations,
        plural(t.failed_expectations, "expectation", "expectations"),
    );
    if t.dropped > 0 {
        out.push_str(&format!(", {} dropped over the cap", t.dropped));
    }
    if let Some(f) = &t.file {
        out.push_str(&format!(", saved to {f}"));
    }
    out
}

fn kind(status: Status) -> NonSuccessKind {
    if status == Status::Error {
        NonSuccessKind::Error
    } else {
        NonSuccessKind::Failure
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `(type, one-line message, full body)` of a non-passing scenario.
fn failure_text(
    test: &TestResult,
    scenario_line: u32,
    status: Status,
    scenario_message: &Option<String>,
    failing: Option<&StepResult>,
) -> (String, String, String) {
    let Some(step) = failing else {
        let what = scenario_message
            .clone()
            .unwrap_or_else(|| status.as_str().to_string());
        let at = location(&test.path, Some(scenario_line), None);
        let type_ = if status == Status::TimedOut {
            "timeout"
        } else {
            status.as_str()
        };
        return (
            type_.to_string(),
            attr_text(&format!("{what} ({at})")),
            body_text(&format!("{what}\nat {at}\n")),
        );
    };
    let at = location(&test.path, Some(step.line), None);
    let type_ = step
        .failures
        .first()
        .map(|f| f.expectation.clone())
        .unwrap_or_else(|| step.status.as_str().to_string());
    let summary = match step.failures.first() {
        Some(f) => format!(
            "{}: expected {}, got {}",
            f.expectation,
            one_line(&f.expected, MESSAGE_VALUE_LIMIT),
            one_line(&f.actual, MESSAGE_VALUE_LIMIT)
        ),
        None => scenario_message
            .clone()
            .unwrap_or_else(|| step.status.as_str().to_string()),
    };
    let more = match step.failures.len() {
        0 | 1 => String::new(),
        n => format!(" (+{} more)", n - 1),
    };
    let message = format!(
        "step `{}` {}: {summary}{more} ({at})",
        step.name,
        step.status.as_str()
    );

    let mut body = format!(
        "step `{}` {} at {at}\ncommand: {} (service `{}`)\n",
        step.name,
        step.status.as_str(),
        step.command,
        step.service
    );
    if let Some(code) = step.exit_code {
        body.push_str(&format!("exit code: {code}\n"));
    }
    for f in &step.failures {
        body.push_str(&format!(
            "- {}\n  expected: {}\n  actual:   {}\n",
            f.expectation,
            clip(&f.expected, VALUE_LIMIT),
            clip(&f.actual, VALUE_LIMIT)
        ));
    }
    if let Some(m) = scenario_message {
        body.push_str(&format!("{m}\n"));
    }
    (type_, attr_text(&message), body_text(&body))
}

/// The chosen stream of every step that produced output, each under a header line.
fn step_streams(steps: &[StepResult], pick: impl Fn(&StepResult) -> (&String, bool)) -> String {
    let mut out = String::new();
    for s in steps {
        let (text, truncated) = pick(s);
        if text.is_empty() {
            continue;
        }
        out.push_str(&format!("--- step `{}` (line {}) ---\n", s.name, s.line));
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        if truncated {
            out.push_str(&format!(
                "[truncated at capture: clnrm keeps {} per stream]\n",
                bytes_human(crate::results::OUTPUT_LIMIT)
            ));
        }
    }
    out
}

fn one_line(s: &str, limit: usize) -> String {
    clip(s, limit).replace('\n', "\\n")
}

fn location(path: &str, line: Option<u32>, col: Option<u32>) -> String {
    match (line, col) {
        (Some(l), Some(c)) => format!("{path}:{l}:{c}"),
        (Some(l), None) => format!("{path}:{l}"),
        _ => path.to_string(),
    }
}

/// Text for an attribute: quick-xml escapes markup, but characters XML forbids must go.
fn attr_text(s: &str) -> String {
    clean_text(s).into_owned()
}

/// Text for an element body: cleaned (quick-xml escapes markup).
fn body_text(s: &str) -> String {
    clean_text(s).into_owned()
}

/// A duration of `ms` milliseconds, rounded to whole milliseconds.
fn millis(ms: f64) -> Duration {
    Duration::from_millis(ms.max(0.0).round() as u64)
}

/// The run's start as the suites' timestamp; none when it does not parse.
fn timestamp(started_at: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(started_at).ok()
}

#[cfg(test)]
#[path = "junit_tests.rs"]
mod tests;
