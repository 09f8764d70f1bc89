//! Tests of the JUnit reporter: snapshot, hostile output, abort, and a real consumer.

use std::process::Command;

use super::*;
use crate::report::fixtures;

fn xml_of(results: &RunResults) -> String {
    String::from_utf8(junit(results).expect("renders")).expect("utf-8")
}

/// Parse `xml` with junitparser; `None` (with the reason printed) when it is not installed
/// outside CI. In CI (`CI=true`) a missing consumer is a failure: the check must run there.
fn consumer_view(xml: &str) -> Option<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).expect("write xml");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report/junit_summary.py"
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = match Command::new("python3").arg(script).arg(&path).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(
                !in_ci,
                "python3 is required in CI for the JUnit round-trip: {e}"
            );
            eprintln!("skipping JUnit round-trip: python3 not runnable: {e}");
            return None;
        }
    };
    if out.status.code() == Some(3) {
        assert!(
            !in_ci,
            "junitparser is required in CI: pip install junitparser"
        );
        eprintln!("skipping JUnit round-trip: junitparser missing (pip install junitparser)");
        return None;
    }
    assert!(
        out.status.success(),
        "junitparser rejected the XML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("script prints JSON"))
}

#[test]
fn snapshot_mixed_with_perf() {
    insta::assert_snapshot!("junit_mixed", xml_of(&fixtures::with_perf()));
}

#[test]
fn counts_and_names_round_trip_through_junitparser() {
    let results = fixtures::with_perf();
    let Some(view) = consumer_view(&xml_of(&results)) else {
        return;
    };
    let suites = view.as_array().expect("array");
    let names: Vec<&str> = suites
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["api", "db", "infra", LOAD_SUITE, PERF_SUITE]);
    let counts: Vec<[u64; 4]> = suites
        .iter()
        .map(|s| ["tests", "failures", "errors", "skipped"].map(|k| s[k].as_u64().expect("count")))
        .collect();
    assert_eq!(
        counts,
        [
            [2, 1, 0, 0],
            [3, 1, 0, 1],
            [1, 0, 1, 0],
            [1, 1, 0, 0],
            [0, 0, 0, 0]
        ]
    );
    assert_eq!(suites[0]["file"], "tests/api.clnrm.toml");
    let cases: Vec<(&str, &str, &str)> = suites
        .iter()
        .flat_map(|s| s["cases"].as_array().expect("cases"))
        .map(|c| {
            (
                c["classname"].as_str().expect("classname"),
                c["name"].as_str().expect("name"),
                c["result"].as_str().expect("result"),
            )
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("api", "health", "passed"),
            ("api", "create user", "failure"),
            ("db", "migrate", "passed"),
            ("db", "backup", "skipped"),
            ("db", "restore", "failure"),
            ("infra", "boot", "error"),
            (LOAD_SUITE, "tests/broken.clnrm.toml", "failure"),
        ]
    );
    assert_eq!(suites[0]["cases"][0]["time"], 0.123);
    assert_eq!(
        suites[0]["cases"][1]["message"],
        "step `check` failed: exit_code: expected 0, got 1 (+1 more) (tests/api.clnrm.toml:30)"
    );
    assert_eq!(
        suites[0]["properties"]["clnrm.perf.create user"],
        "regressed: 71.5 ms vs baseline 50.0 ms, ratio 1.430, normalised 1.362, MDE 8.0 %"
    );
    assert_eq!(suites[4]["properties"]["clnrm.perf.speed_factor"], "1.050");
}

#[test]
fn hostile_output_stays_well_formed_and_bounded() {
    let xml = xml_of(&fixtures::hostile());
    assert!(xml.len() < 3 * JUNIT_OUTPUT_LIMIT, "{} bytes", xml.len());
    assert!(xml.contains("[... truncated: 9.9 MiB cut ...]"));
    assert!(!xml.contains('\u{1b}') && !xml.contains('\u{0}'));
    assert!(xml.contains("]]&gt; &amp; &lt;/system-out&gt;"));
    let Some(view) = consumer_view(&xml) else {
        return;
    };
    let case = &view[0]["cases"][0];
    assert_eq!(case["name"], "pipe | `tick` </details> @org/team #1");
    assert_eq!(case["result"], "failure");
    assert_eq!(view[0]["name"], "evil <script> @here");
    // The consumer gets the hostile text back verbatim, `]]>` included, minus control bytes.
    let out = case["system_out"].as_str().expect("system-out");
    assert!(
        out.contains("</details>\n<script>alert(1)</script>\n@org/team please look, fixes #123\n]]> & </system-out>\nred\u{FFFD}\u{FFFD}\n"),
        "{out}"
    );
    let err_len = case["system_err_len"].as_u64().expect("len");
    assert!((64 * 1024..66 * 1024).contains(&err_len), "{err_len}");
}

#[test]
fn aborted_run_adds_no_testcase_and_says_why() {
    let mut results = fixtures::mixed();
    results.aborted = Some("SIGTERM <received>".to_string());
    results.tests.truncate(1);
    let xml = xml_of(&results);
    assert!(
        xml.contains("<property name=\"clnrm.run.aborted\" value=\"SIGTERM &lt;received&gt;\"/>"),
        "{xml}"
    );
    assert!(
        xml.contains("run aborted: SIGTERM &lt;received&gt;"),
        "{xml}"
    );
    assert!(
        !xml.contains("run aborted\""),
        "no invented testcase: {xml}"
    );
    assert_valid_against_jenkins_schema(&xml);
    let Some(view) = consumer_view(&xml) else {
        return;
    };
    let last = view.as_array().expect("array").last().expect("suite");
    assert_eq!(last["name"], RUN_SUITE);
    assert_eq!(last["tests"], 0);
    assert_eq!(last["errors"], 0);
    assert_eq!(
        last["properties"]["clnrm.run.aborted"],
        "SIGTERM <received>"
    );
}

#[test]
fn empty_run_is_a_valid_document() {
    let xml = xml_of(&fixtures::results(Vec::new()));
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"clnrm\" tests=\"0\" \
         failures=\"0\" errors=\"0\" time=\"4.321\">\n</testsuites>\n"
    );
    assert_valid_against_jenkins_schema(&xml);
}

/// One scenario that passed on its third attempt and one that failed all three.
fn retried() -> RunResults {
    let attempt = |n: u32, out: &str| {
        let mut step = fixtures::step("call", 22, Status::Failed, 5.0, out);
        step.stderr = format!("stderr of attempt {n}\n");
        step.failures = vec![crate::results::Failure {
            expectation: "exit_code".to_string(),
            expected: "0".to_string(),
            actual: "7".to_string(),
        }];
        crate::results::AttemptResult {
            attempt: n,
            status: Status::Failed,
            duration_ms: 40.0,
            steps: vec![step],
            message: None,
        }
    };
    let mut flaky = fixtures::scenario(
        "eventually",
        20,
        Status::Flaky,
        50.0,
        vec![fixtures::step(
            "call",
            22,
            Status::Passed,
            5.0,
            "third time lucky\n",
        )],
    );
    flaky.attempts = 3;
    flaky.previous_attempts = vec![attempt(1, "first try\n"), attempt(2, "second try\n")];
    let mut last = attempt(3, "third try\n").steps;
    last[0].line = 32;
    let mut broken = fixtures::scenario("never", 30, Status::Failed, 60.0, last);
    broken.attempts = 3;
    broken.previous_attempts = vec![attempt(1, "first try\n"), attempt(2, "second try\n")];
    fixtures::results(vec![fixtures::test("retry", vec![flaky, broken])])
}

#[test]
fn retries_are_flaky_and_rerun_failures_with_each_attempts_output() {
    let xml = xml_of(&retried());
    // Passed on a retry: a passing testcase with one flakyFailure per failed attempt.
    let flaky = &xml[xml.find("name=\"eventually\"").unwrap()..xml.find("name=\"never\"").unwrap()];
    assert_eq!(flaky.matches("<flakyFailure ").count(), 2, "{flaky}");
    assert!(!flaky.contains("<failure"), "{flaky}");
    assert!(flaky.contains("message=\"attempt 1: step `call` failed: exit_code: expected 0, got 7 (tests/retry.clnrm.toml:22)\""), "{flaky}");
    assert!(
        flaky.contains("<system-out>--- step `call` (line 22) ---\nfirst try\n</system-out>"),
        "{flaky}"
    );
    assert!(
        flaky.contains("<system-out>--- step `call` (line 22) ---\nsecond try\n</system-out>"),
        "{flaky}"
    );
    assert!(
        flaky.contains(
            "<system-err>--- step `call` (line 22) ---\nstderr of attempt 2\n</system-err>"
        ),
        "{flaky}"
    );
    assert!(flaky.contains("third time lucky"), "{flaky}");
    // Never passed: the final failure, then one rerunFailure per earlier attempt.
    let never = &xml[xml.find("name=\"never\"").unwrap()..];
    assert_eq!(never.matches("<failure ").count(), 1, "{never}");
    assert_eq!(never.matches("<rerunFailure ").count(), 2, "{never}");
    assert!(never.contains("third try"), "{never}");
    // `file` and `line` on every testcase: the failing step's line, else the scenario's.
    assert!(xml.contains("<testcase name=\"eventually\" classname=\"retry\" time=\"0.050\" file=\"tests/retry.clnrm.toml\" line=\"20\">"), "{xml}");
    assert!(xml.contains("<testcase name=\"never\" classname=\"retry\" time=\"0.060\" file=\"tests/retry.clnrm.toml\" line=\"32\">"), "{xml}");
    assert_valid_against_jenkins_schema(&xml);
    let Some(view) = consumer_view(&xml) else {
        return;
    };
    let cases = view[0]["cases"].as_array().expect("cases");
    assert_eq!(cases[0]["result"], "passed");
    assert_eq!(cases[1]["result"], "failure");
}

#[test]
fn every_report_is_valid_against_the_jenkins_schema() {
    for results in [
        fixtures::mixed(),
        fixtures::with_perf(),
        fixtures::hostile(),
    ] {
        assert_valid_against_jenkins_schema(&xml_of(&results));
    }
}

/// Validate `xml` with the PyPI package xmlschema against the Jenkins JUnit schema in
/// tests/fixtures/report (plus the `file`/`line` testcase attributes the report actions
/// read); skipped outside CI when python3 or xmlschema is missing, a failure in CI.
fn assert_valid_against_jenkins_schema(xml: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("junit.xml");
    std::fs::write(&path, xml).expect("write xml");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report/junit_validate.py"
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = match Command::new("python3").arg(script).arg(&path).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(
                !in_ci,
                "python3 is required in CI for the schema check: {e}"
            );
            eprintln!("skipping the JUnit schema check: python3 not runnable: {e}");
            return;
        }
    };
    if out.status.code() == Some(3) {
        assert!(!in_ci, "xmlschema is required in CI: pip install xmlschema");
        eprintln!("skipping the JUnit schema check: xmlschema missing (pip install xmlschema)");
        return;
    }
    assert!(
        out.status.success(),
        "the JUnit XML does not validate: {}\n{xml}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn span_summaries_are_suite_properties_and_system_out() {
    let results = fixtures::with_telemetry();
    let xml = xml_of(&results);
    assert_valid_against_jenkins_schema(&xml);
    let Some(view) = consumer_view(&xml) else {
        return;
    };
    let props = &view[0]["properties"];
    assert_eq!(
        props["clnrm.spans.health"],
        "4 spans, 0 errors, 0 failed expectations, saved to out/spans/api/health.otlp.jsonl"
    );
    assert_eq!(
        props["clnrm.spans.create user"],
        "2 spans, 1 error, 1 failed expectation, 3 dropped over the cap, saved to out/spans/api/create_user.otlp.jsonl"
    );
    let out = view[0]["cases"][0]["system_out"]
        .as_str()
        .expect("system-out");
    assert!(
        out.starts_with("clnrm: telemetry: 4 spans, 0 errors"),
        "{out}"
    );
}
