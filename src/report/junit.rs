//! JUnit XML: one testsuite per test file, one testcase per scenario, via junit-report 0.9.
//!
//! junit-report 0.9 cannot write a testsuite `file` attribute, a `skipped` count,
//! `<properties>` or totals on `<testsuites>`, so [`decorate`] adds them to its output in
//! one pass that skips CDATA sections (the only place test text can hold a raw `<`).

use std::borrow::Cow;

use junit_report::{
    Duration, OffsetDateTime, Report, TestCase, TestCaseBuilder, TestSuite, TestSuiteBuilder,
};

use crate::results::{PerfRow, RunResults, ScenarioResult, Status, StepResult, TestResult};

use super::error::ReportError;
use super::escape::{clean_text, clip, xml_cdata};
use super::units::{bytes_human, perf_row_summary};

/// Bytes of stdout (and, separately, stderr) kept per testcase.
pub const JUNIT_OUTPUT_LIMIT: usize = 64 * 1024;
/// Bytes kept of one expected/actual value inside a failure body.
const VALUE_LIMIT: usize = 4 * 1024;
/// Bytes kept of one expected/actual value inside the one-line `message` attribute.
const MESSAGE_VALUE_LIMIT: usize = 200;

/// Name of the testsuite that holds one failing testcase per test file that did not load.
pub const LOAD_SUITE: &str = "clnrm load";
/// Name of the testsuite that reports an aborted run as an error testcase.
pub const RUN_SUITE: &str = "clnrm run";
/// Name of the testsuite whose properties carry the run-level perf gate result.
pub const PERF_SUITE: &str = "clnrm perf";

/// What [`decorate`] adds to one `<testsuite>` element.
#[derive(Default)]
struct SuiteExtra {
    file: Option<String>,
    skipped: usize,
    properties: Vec<(String, String)>,
}

/// Render `results` as JUnit XML.
pub fn junit(results: &RunResults) -> Result<Vec<u8>, ReportError> {
    let timestamp = timestamp(&results.started_at);
    let mut suites: Vec<TestSuite> = Vec::new();
    let mut extras: Vec<SuiteExtra> = Vec::new();

    for test in &results.tests {
        let mut b = TestSuiteBuilder::new(&attr_text(&test.name));
        b.set_timestamp(timestamp);
        for sc in &test.scenarios {
            b.add_testcase(testcase(test, sc));
        }
        let properties = results
            .perf
            .iter()
            .flat_map(|p| p.rows.iter())
            .filter(|row| row_belongs_to(row, test))
            .map(|row| {
                (
                    format!("clnrm.perf.{}", row.scenario),
                    perf_row_summary(row),
                )
            })
            .collect();
        push(
            &mut suites,
            &mut extras,
            b.build(),
            Some(test.path.clone()),
            properties,
        );
    }

    if !results.load_errors.is_empty() {
        let mut b = TestSuiteBuilder::new(LOAD_SUITE);
        b.set_timestamp(timestamp);
        for e in &results.load_errors {
            let location = location(&e.path, e.line, e.column);
            let first_line = e.message.lines().next().unwrap_or_default();
            let tc = TestCaseBuilder::failure(
                &attr_text(&e.path),
                Duration::ZERO,
                "load-error",
                &attr_text(&format!("{location}: {first_line}")),
            )
            .set_classname(LOAD_SUITE)
            .set_filepath(&attr_text(&e.path))
            .set_trace(&body_text(&format!("{location}: {}", e.message)))
            .build();
            b.add_testcase(tc);
        }
        push(&mut suites, &mut extras, b.build(), None, Vec::new());
    }

    if let Some(reason) = &results.aborted {
        let mut b = TestSuiteBuilder::new(RUN_SUITE);
        b.set_timestamp(timestamp);
        let tc = TestCaseBuilder::error(
            "run aborted",
            Duration::ZERO,
            "aborted",
            &attr_text(&format!("run aborted: {reason}")),
        )
        .set_classname(RUN_SUITE)
        .build();
        b.add_testcase(tc);
        push(&mut suites, &mut extras, b.build(), None, Vec::new());
    }

    if let Some(perf) = &results.perf {
        let mut b = TestSuiteBuilder::new(PERF_SUITE);
        b.set_timestamp(timestamp);
        let mut props = vec![
            (
                "clnrm.perf.baseline".to_string(),
                perf.baseline_path.clone(),
            ),
            ("clnrm.perf.failed".to_string(), perf.failed.to_string()),
            (
                "clnrm.perf.speed_verdict".to_string(),
                perf.speed_verdict.to_string(),
            ),
        ];
        if let Some(f) = perf.speed_factor {
            props.push(("clnrm.perf.speed_factor".to_string(), format!("{f:.3}")));
        }
        for row in perf
            .rows
            .iter()
            .filter(|r| !results.tests.iter().any(|t| row_belongs_to(r, t)))
        {
            props.push((format!("clnrm.perf.{}", row.key), perf_row_summary(row)));
        }
        for (i, note) in perf.notes.iter().enumerate() {
            props.push((format!("clnrm.perf.note.{}", i + 1), note.clone()));
        }
        push(&mut suites, &mut extras, b.build(), None, props);
    }

    let root = vec![
        ("name".to_string(), "clnrm".to_string()),
        (
            "tests".to_string(),
            suites
                .iter()
                .map(TestSuite::tests)
                .sum::<usize>()
                .to_string(),
        ),
        (
            "failures".to_string(),
            suites
                .iter()
                .map(TestSuite::failures)
                .sum::<usize>()
                .to_string(),
        ),
        (
            "errors".to_string(),
            suites
                .iter()
                .map(TestSuite::errors)
                .sum::<usize>()
                .to_string(),
        ),
        (
            "skipped".to_string(),
            suites
                .iter()
                .map(TestSuite::skipped)
                .sum::<usize>()
                .to_string(),
        ),
        ("time".to_string(), seconds(results.duration_ms)),
    ];

    let mut report = Report::new();
    report.add_testsuites(suites);
    let mut out = Vec::new();
    report.write_xml(&mut out)?;
    let xml = String::from_utf8(out).expect("junit-report writes the UTF-8 strings it was given");
    let mut xml = decorate(&xml, &root, &extras);
    xml.push('\n');
    Ok(xml.into_bytes())
}

fn push(
    suites: &mut Vec<TestSuite>,
    extras: &mut Vec<SuiteExtra>,
    suite: TestSuite,
    file: Option<String>,
    properties: Vec<(String, String)>,
) {
    extras.push(SuiteExtra {
        file,
        skipped: suite.skipped(),
        properties,
    });
    suites.push(suite);
}

/// Perf rows are keyed `path#scenario`; `test` (the test name) is the fallback.
fn row_belongs_to(row: &PerfRow, test: &TestResult) -> bool {
    match row.key.split_once('#') {
        Some((path, _)) => path == test.path,
        None => !row.key.starts_with("phase:") && row.test == test.name,
    }
}

fn testcase(test: &TestResult, sc: &ScenarioResult) -> TestCase {
    let name = attr_text(&sc.name);
    let time = Duration::milliseconds(sc.duration_ms.max(0.0).round() as i64);
    let failing = sc.steps.iter().find(|s| s.status.is_failure());
    let mut b = match sc.status {
        Status::Passed | Status::Flaky => TestCaseBuilder::success(&name, time),
        Status::Skipped => match &sc.message {
            Some(m) => TestCaseBuilder::skipped_with_cause(&name, "skipped", &attr_text(m)),
            None => TestCaseBuilder::skipped(&name),
        },
        Status::Failed | Status::TimedOut | Status::Error => {
            let (type_, message, body) = failure_text(test, sc, failing);
            let mut b = if sc.status == Status::Error {
                TestCaseBuilder::error(&name, time, &type_, &message)
            } else {
                TestCaseBuilder::failure(&name, time, &type_, &message)
            };
            b.set_trace(&body);
            b
        }
    };
    b.set_classname(&attr_text(&test.name));
    b.set_filepath(&attr_text(&test.path));

    let mut out = String::new();
    if sc.status == Status::Flaky {
        out.push_str(&format!(
            "clnrm: flaky, passed on attempt {} after {} failed attempt(s)\n",
            sc.attempts,
            sc.attempts.saturating_sub(1)
        ));
    }
    out.push_str(&step_streams(&sc.steps, |s| {
        (&s.stdout, s.stdout_truncated)
    }));
    if !out.is_empty() {
        b.set_system_out(&body_text(&clip(&out, JUNIT_OUTPUT_LIMIT)));
    }
    let err = step_streams(&sc.steps, |s| (&s.stderr, s.stderr_truncated));
    if !err.is_empty() {
        b.set_system_err(&body_text(&clip(&err, JUNIT_OUTPUT_LIMIT)));
    }
    b.build()
}

/// `(type, one-line message, full body)` of a non-passing scenario.
fn failure_text(
    test: &TestResult,
    sc: &ScenarioResult,
    failing: Option<&StepResult>,
) -> (String, String, String) {
    let Some(step) = failing else {
        let what = sc
            .message
            .clone()
            .unwrap_or_else(|| sc.status.as_str().to_string());
        let at = location(&test.path, Some(sc.line), None);
        let type_ = if sc.status == Status::TimedOut {
            "timeout"
        } else {
            sc.status.as_str()
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
        None => sc
            .message
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
    if let Some(m) = &sc.message {
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

/// Text for a CDATA body: cleaned and with `]]>` split.
fn body_text(s: &str) -> String {
    xml_cdata(&clean_text(s)).into_owned()
}

/// Seconds with millisecond precision.
fn seconds(ms: f64) -> String {
    format!("{:.3}", ms.max(0.0).round() / 1000.0)
}

/// The run's start as the suites' timestamp; the epoch when it does not parse, so output
/// stays deterministic.
fn timestamp(started_at: &str) -> OffsetDateTime {
    chrono::DateTime::parse_from_rfc3339(started_at)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Escape an attribute value we add ourselves (junit-report escapes its own).
fn xml_attr(s: &str) -> String {
    let s = clean_text(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

fn attrs_text(attrs: &[(String, String)]) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", xml_attr(v)))
        .collect()
}

/// Rewrite a start tag's `time="..."` with exactly three decimals: junit-report prints
/// `secs + nanos / 1e9`, which gives `6.5120000000000005` for 6512 ms.
fn fixed_time(tag: &str) -> Cow<'_, str> {
    // Attribute values are escaped (no raw `"`), so this only matches the attribute.
    let Some(at) = tag.find(" time=\"") else {
        return Cow::Borrowed(tag);
    };
    let value_start = at + " time=\"".len();
    let Some(len) = tag[value_start..].find('"') else {
        return Cow::Borrowed(tag);
    };
    let Ok(secs) = tag[value_start..value_start + len].parse::<f64>() else {
        return Cow::Borrowed(tag);
    };
    Cow::Owned(format!(
        "{}{secs:.3}{}",
        &tag[..value_start],
        &tag[value_start + len..]
    ))
}

/// Add root totals, each suite's `file`/`skipped` attributes and its `<properties>` to the
/// XML junit-report wrote. Suites appear in `extras` order.
fn decorate(xml: &str, root: &[(String, String)], extras: &[SuiteExtra]) -> String {
    let mut out = String::with_capacity(xml.len() + 256 * extras.len());
    let mut pos = 0;
    let mut suite = 0;
    while let Some(off) = xml[pos..].find('<') {
        let start = pos + off;
        let rest = &xml[start..];
        if rest.starts_with("<![CDATA[") {
            let Some(end) = rest.find("]]>") else { break };
            out.push_str(&xml[pos..start + end + 3]);
            pos = start + end + 3;
            continue;
        }
        let is_tag = |name: &str| {
            rest.starts_with(name)
                && matches!(rest.as_bytes().get(name.len()), Some(b' ' | b'>' | b'/'))
        };
        let (attrs, props) = if is_tag("<testsuites") {
            (attrs_text(root), String::new())
        } else if is_tag("<testsuite") {
            let Some(extra) = extras.get(suite) else {
                break;
            };
            suite += 1;
            let mut attrs = Vec::new();
            if let Some(f) = &extra.file {
                attrs.push(("file".to_string(), f.clone()));
            }
            attrs.push(("skipped".to_string(), extra.skipped.to_string()));
            let props = if extra.properties.is_empty() {
                String::new()
            } else {
                let inner: String = extra
                    .properties
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "<property name=\"{}\" value=\"{}\"/>",
                            xml_attr(k),
                            xml_attr(v)
                        )
                    })
                    .collect();
                format!("<properties>{inner}</properties>")
            };
            (attrs_text(&attrs), props)
        } else if is_tag("<testcase") {
            (String::new(), String::new())
        } else {
            out.push_str(&xml[pos..=start]);
            pos = start + 1;
            continue;
        };
        let Some(close) = rest.find('>') else { break };
        let tag_end = start + close;
        let self_closing = xml.as_bytes()[tag_end - 1] == b'/';
        let attrs_end = if self_closing { tag_end - 1 } else { tag_end };
        out.push_str(&xml[pos..start]);
        out.push_str(&fixed_time(&xml[start..attrs_end]));
        out.push_str(&attrs);
        if self_closing && !props.is_empty() {
            out.push('>');
            out.push_str(&props);
            out.push_str("</testsuite>");
        } else {
            out.push_str(&xml[attrs_end..=tag_end]);
            out.push_str(&props);
        }
        pos = tag_end + 1;
    }
    out.push_str(&xml[pos..]);
    out
}

#[cfg(test)]
#[path = "junit_tests.rs"]
mod tests;
