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
    assert!(xml.contains("]]]]><![CDATA[>"));
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
fn aborted_run_is_well_formed_with_an_error_case() {
    let mut results = fixtures::mixed();
    results.aborted = Some("SIGTERM <received>".to_string());
    results.tests.truncate(1);
    let xml = xml_of(&results);
    assert!(
        xml.contains("<error type=\"aborted\" message=\"run aborted: SIGTERM &lt;received&gt;\"/>")
    );
    let Some(view) = consumer_view(&xml) else {
        return;
    };
    let last = view.as_array().expect("array").last().expect("suite");
    assert_eq!(last["name"], RUN_SUITE);
    assert_eq!(last["errors"], 1);
}

#[test]
fn empty_run_is_a_valid_document() {
    let xml = xml_of(&fixtures::results(Vec::new()));
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites name=\"clnrm\" tests=\"0\" \
         failures=\"0\" errors=\"0\" skipped=\"0\" time=\"4.321\"/>\n"
    );
}

#[test]
fn decorate_ignores_lookalike_tags_inside_cdata() {
    let xml = "<testsuites><testsuite id=\"0\" name=\"a\"><system-out><![CDATA[<testsuite id=\"1\">]]></system-out></testsuite></testsuites>";
    let extras = [SuiteExtra {
        file: Some("a&b.toml".to_string()),
        skipped: 0,
        properties: vec![("k".to_string(), "v\"".to_string())],
    }];
    assert_eq!(
        decorate(xml, &[], &extras),
        "<testsuites><testsuite id=\"0\" name=\"a\" file=\"a&amp;b.toml\" skipped=\"0\"><properties>\
         <property name=\"k\" value=\"v&quot;\"/></properties><system-out><![CDATA[<testsuite id=\"1\">]]>\
         </system-out></testsuite></testsuites>"
    );
}
