//! Tests of shard merging, and of the JSON fixture files other tests (and the CLI's
//! end-to-end tests) read from `tests/fixtures/report/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::report::{fixtures, json, junit, markdown, parse_json, MarkdownOptions};
use crate::results::Shard;

/// `fixtures::with_perf()` as it would come out of two shards of the same run.
fn shards() -> (RunResults, RunResults) {
    let full = fixtures::with_perf();
    let mut a = full.clone();
    let mut b = full.clone();
    a.shard = Some(Shard { index: 1, count: 2 });
    b.shard = Some(Shard { index: 2, count: 2 });
    a.run_id = "run-a".to_string();
    b.run_id = "run-b".to_string();
    b.started_at = "2026-01-02T03:04:06Z".to_string();
    b.duration_ms = 3000.0;
    a.tests = vec![full.tests[0].clone(), full.tests[2].clone()]; // api, infra
    b.tests = vec![full.tests[1].clone()]; // db
    let phases = |v: [f64; 5]| -> BTreeMap<Phase, f64> {
        [
            Phase::Discover,
            Phase::Validate,
            Phase::Plan,
            Phase::Run,
            Phase::Cleanup,
        ]
        .into_iter()
        .zip(v)
        .collect()
    };
    a.phases = phases([2.0, 5.0, 0.5, 1500.0, 40.0]);
    b.phases = phases([1.5, 4.0, 0.5, 2700.0, 60.0]);
    let perf = full.perf.clone().expect("fixture has perf");
    let rows_for = |prefix: &str| -> Vec<_> {
        perf.rows
            .iter()
            .filter(|r| r.key.starts_with(prefix) || r.key.starts_with("phase:"))
            .cloned()
            .collect()
    };
    let pa = a.perf.as_mut().expect("perf");
    pa.rows = rows_for("tests/api");
    // Each shard compared its own scenarios; the merge adds them up to the unsharded count.
    (pa.compared, pa.speed_sample) = (1, 1);
    let pb = b.perf.as_mut().expect("perf");
    pb.rows = rows_for("tests/db");
    (pb.compared, pb.speed_sample) = (3, 3);
    pb.notes.clear();
    pb.failed = true;
    (a, b)
}

fn normalised_json(mut r: RunResults) -> String {
    r.run_id = "RUN".to_string();
    String::from_utf8(json(&r)).expect("utf-8")
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let (a, b) = shards();
    // Order of the inputs does not matter: shards sort by index.
    let merged = merge(vec![b, a]).expect("merges");
    assert_eq!(merged.run_id, "run-a+run-b");
    let full = fixtures::with_perf();
    assert_eq!(
        normalised_json(merged.clone()),
        normalised_json(full.clone())
    );
    let mut merged = merged;
    merged.run_id = full.run_id.clone();
    assert_eq!(
        markdown(&merged, &MarkdownOptions::default()),
        markdown(&full, &MarkdownOptions::default())
    );
    assert_eq!(junit(&merged).expect("junit"), junit(&full).expect("junit"));
}

#[test]
fn refuses_other_suites_and_versions_naming_both_values() {
    let (a, mut b) = shards();
    b.suite_id = "suite-other".to_string();
    let err = merge_named(vec![("a.json".into(), a.clone()), ("b.json".into(), b)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot merge `a.json` (shard 1/2) and `b.json` (shard 2/2): different suite_id \
         (`suite-abc` vs `suite-other`)\nhint: only shards of one run of one suite with one \
         clnrm version can be merged"
    );
    let (_, mut b) = shards();
    b.clnrm_version = "0.2.0".to_string();
    let err = merge(vec![a.clone(), b]).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "cannot merge `results #1` (shard 1/2) and `results #2` (shard 2/2): different clnrm_version (`0.1.0` vs `0.2.0`)"
        ),
        "{err}"
    );
    let (_, mut b) = shards();
    b.schema_version = 9;
    assert!(matches!(
        merge(vec![a, b]).unwrap_err(),
        ReportError::MergeMismatch {
            field: "schema_version",
            ..
        }
    ));
}

#[test]
fn refuses_the_same_test_or_shard_twice() {
    let (a, _) = shards();
    let err = merge(vec![a.clone(), a.clone()]).unwrap_err();
    assert!(
        matches!(err, ReportError::MergeDuplicateShard { index: 1, .. }),
        "{err}"
    );
    let mut twin = a.clone();
    twin.shard = Some(Shard { index: 2, count: 2 });
    let err = merge(vec![a, twin]).unwrap_err();
    assert!(
        matches!(&err, ReportError::MergeDuplicateTest { path, .. } if path == "tests/api.clnrm.toml"),
        "{err}"
    );
    assert!(matches!(
        merge(Vec::new()).unwrap_err(),
        ReportError::MergeEmpty
    ));
}

#[test]
fn differing_speed_factors_are_dropped_with_a_note_and_aborts_are_kept() {
    let (a, mut b) = shards();
    b.perf.as_mut().expect("perf").speed_factor = Some(0.9);
    b.aborted = Some("SIGTERM".to_string());
    let merged = merge(vec![a, b]).expect("merges");
    let perf = merged.perf.expect("perf");
    assert_eq!(perf.speed_factor, None);
    assert_eq!(
        perf.notes.last().map(String::as_str),
        Some("runner speed factor differs per shard: `results #1` (shard 1/2) ×1.050, `results #2` (shard 2/2) ×0.900")
    );
    assert_eq!(
        merged.aborted.as_deref(),
        Some("`results #2` (shard 2/2): SIGTERM")
    );
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
}

/// The committed JSON fixtures are what the generators here produce. Run with
/// `CLNRM_UPDATE_FIXTURES=1` to rewrite them after changing a generator.
#[test]
fn fixture_files_are_current() {
    let (a, b) = shards();
    let mut other = b.clone();
    other.suite_id = "suite-other".to_string();
    let files = [
        ("unsharded.json", fixtures::with_perf()),
        ("shard-1.json", a),
        ("shard-2.json", b),
        ("other-suite-shard-2.json", other),
    ];
    let update = std::env::var("CLNRM_UPDATE_FIXTURES").is_ok_and(|v| v == "1");
    for (name, results) in files {
        let path = fixture_dir().join(name);
        let bytes = json(&results);
        if update {
            std::fs::write(&path, &bytes).expect("write fixture");
        }
        let on_disk =
            std::fs::read(&path).expect("fixture exists (CLNRM_UPDATE_FIXTURES=1 writes it)");
        assert!(
            on_disk == bytes,
            "{name} is stale: run with CLNRM_UPDATE_FIXTURES=1"
        );
        assert_eq!(parse_json(&path, &on_disk).expect("parses"), results);
    }
}
