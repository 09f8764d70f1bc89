//! Reporter throughput on a large run: 200 test files, 1,000 scenarios, 3,000 steps with
//! 2 KiB of output each, 10 % of scenarios failing.
//!
//! `cargo bench --bench report -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::path::Path;

use clnrm::report::{json, junit, markdown, merge, parse_json, table, MarkdownOptions};
use clnrm::results::{
    BackendKind, Backends, Failure, Fingerprint, Phase, RunResults, ScenarioResult, Shard, Status,
    StepResult, TestResult, SCHEMA_VERSION,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn large_run() -> RunResults {
    let output = "log line with some text | and `ticks` <b>\n".repeat(50);
    let tests = (0..200)
        .map(|t| TestResult {
            name: format!("test-{t:03}"),
            path: format!("tests/test-{t:03}.clnrm.toml"),
            tags: vec![],
            status: Status::Passed,
            duration_ms: 500.0,
            scenarios: (0..5)
                .map(|s| {
                    let failed = (t * 5 + s) % 10 == 0;
                    let status = if failed {
                        Status::Failed
                    } else {
                        Status::Passed
                    };
                    ScenarioResult {
                        duration_ms: 100.0 + s as f64,
                        step_ms: 90.0,
                        phases: BTreeMap::from([(Phase::Start, 160.0)]),
                        steps: (0..3)
                            .map(|k| StepResult {
                                name: format!("step {k}"),
                                line: 12 + k,
                                service: "app".to_string(),
                                command: "sh -c 'run'".to_string(),
                                status: if failed && k == 2 {
                                    Status::Failed
                                } else {
                                    Status::Passed
                                },
                                exit_code: Some(i64::from(failed && k == 2)),
                                duration_ms: 30.0,
                                stdout: output.clone(),
                                stderr: output.clone(),
                                stdout_truncated: false,
                                stderr_truncated: false,
                                failures: if failed && k == 2 {
                                    vec![Failure {
                                        expectation: "exit_code".to_string(),
                                        expected: "0".to_string(),
                                        actual: "1".to_string(),
                                    }]
                                } else {
                                    vec![]
                                },
                            })
                            .collect(),
                        ..ScenarioResult::new(format!("scenario {s}"), 10 + s as u32 * 10, status)
                    }
                })
                .collect(),
        })
        .collect();
    RunResults {
        schema_version: SCHEMA_VERSION,
        clnrm_version: "0.1.0".to_string(),
        run_id: "bench".to_string(),
        started_at: "2026-01-02T03:04:05Z".to_string(),
        duration_ms: 60_000.0,
        backend: Backends::one(BackendKind::Fake),
        fingerprint: Fingerprint::default(),
        suite_id: "suite".to_string(),
        shard: None,
        phases: BTreeMap::new(),
        load_errors: vec![],
        tests,
        perf: None,
        aborted: None,
        empty_shard: false,
        missing_shards: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let run = large_run();
    let bytes = json(&run);
    let shards: Vec<RunResults> = (0..4u32)
        .map(|i| {
            let mut s = run.clone();
            s.shard = Some(Shard {
                index: i + 1,
                count: 4,
            });
            s.tests = run
                .tests
                .iter()
                .skip(i as usize)
                .step_by(4)
                .cloned()
                .collect();
            s
        })
        .collect();
    eprintln!(
        "sizes: results JSON {} bytes, JUnit {} bytes, markdown {} bytes",
        bytes.len(),
        junit(&run).expect("renders").len(),
        markdown(&run, &MarkdownOptions::default()).len()
    );
    let mut g = c.benchmark_group("report_1000_scenarios");
    g.sample_size(10);
    g.bench_function("junit", |b| b.iter(|| junit(&run).expect("renders")));
    g.bench_function("markdown", |b| {
        b.iter(|| markdown(&run, &MarkdownOptions::default()))
    });
    g.bench_function("json", |b| b.iter(|| json(&run)));
    g.bench_function("parse_json", |b| {
        b.iter(|| parse_json(Path::new("r.json"), &bytes).expect("parses"))
    });
    g.bench_function("table", |b| b.iter(|| table(&run, false)));
    g.bench_function("merge_4_shards", |b| {
        b.iter(|| merge(shards.clone()).expect("merges"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
