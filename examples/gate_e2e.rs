//! End-to-end check of the perf gate on real container timings (needs a Docker daemon and
//! the local image `clnrm-test/busybox:latest`).
//!
//! Records a baseline of 6 scenarios (`docker exec` of short sleeps and loops) over 6 runs,
//! writes and re-reads the baseline file, then gates (1) an unchanged run and (2) a run where
//! one scenario got an extra `sleep 0.25`. Flagged scenarios are re-measured 3 times, as
//! `clnrm run --gate` does. Prints each verdict table and the exit code the gate maps to
//! (0 or 3); exits 0 itself only when the unchanged run passes and the slowed one fails
//! naming the slowed scenario.
//!
//! `cargo run --example gate_e2e`

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use clnrm::perf::sim::build_results;
use clnrm::perf::{confirm, fingerprint, screen, Baseline, GateConfig};
use clnrm::results::{PerfSummary, RunResults};

const IMAGE: &str = "clnrm-test/busybox:latest";
const PATH: &str = "examples/e2e.clnrm.toml";
const SCENARIOS: [(&str, &str); 6] = [
    ("sleep-200", "sleep 0.2"),
    ("sleep-300", "sleep 0.3"),
    (
        "count-20k",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ),
    ("sleep-400", "sleep 0.4"),
    ("echo-sleep", "echo hi >/dev/null; sleep 0.25"),
    (
        "count-40k",
        "i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done",
    ),
];
const SLOWED: usize = 2;

/// Removes the container even when the check panics.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn exec_ms(container: &str, script: &str) -> f64 {
    let t = Instant::now();
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("docker CLI runs");
    assert!(out.status.success(), "exec failed: {out:?}");
    t.elapsed().as_secs_f64() * 1000.0
}

fn script(k: usize, slowed: bool) -> String {
    let base = SCENARIOS[k].1.to_string();
    if slowed && k == SLOWED {
        format!("{base}; sleep 0.25")
    } else {
        base
    }
}

fn run(container: &str, at: &str, slowed: bool) -> RunResults {
    let values: Vec<(String, String, f64)> = (0..SCENARIOS.len())
        .map(|k| {
            let ms = exec_ms(container, &script(k, slowed));
            (PATH.to_string(), SCENARIOS[k].0.to_string(), ms)
        })
        .collect();
    build_results(at, &fingerprint(), values)
}

fn gate(container: &str, baseline: &Baseline, slowed: bool) -> (PerfSummary, u8) {
    let cfg = GateConfig::default();
    let results = run(container, &chrono::Utc::now().to_rfc3339(), slowed);
    let screening = screen(&results, baseline, &cfg);
    let mut again = BTreeMap::new();
    for key in screening.flagged() {
        let k = SCENARIOS
            .iter()
            .position(|(n, _)| key.ends_with(&format!("#{n}")))
            .expect("flagged keys are ours");
        let v: Vec<f64> = (0..3)
            .map(|_| exec_ms(container, &script(k, slowed)))
            .collect();
        again.insert(key, v);
    }
    let summary = confirm(screening, &again, &cfg);
    let code = if summary.failed {
        clnrm::exit::PERF_REGRESSION
    } else {
        clnrm::exit::OK
    };
    (summary, code)
}

fn print(title: &str, s: &PerfSummary, code: u8) {
    println!("\n## {title}: exit {code}\n");
    println!(
        "speed factor {:.3} ({})",
        s.speed_factor.unwrap_or(f64::NAN),
        s.speed_verdict
    );
    println!("| key | baseline ms | now ms | normalised | MDE | verdict | note |");
    println!("|---|---:|---:|---:|---:|---|---|");
    for r in &s.rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.3} | {:.1} % | {} | {} |",
            r.key,
            r.baseline_ms.unwrap_or(f64::NAN),
            r.current_ms,
            r.normalised_ratio.unwrap_or(f64::NAN),
            r.mde.unwrap_or(f64::NAN) * 100.0,
            r.verdict,
            r.note.as_deref().unwrap_or("")
        );
    }
}

fn main() {
    let run_id = format!("gate-e2e-{}", std::process::id());
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--label",
            &format!("clnrm.run={run_id}"),
            "--network",
            "none",
            IMAGE,
            "sleep",
            "3600",
        ])
        .output()
        .expect("docker CLI runs");
    assert!(out.status.success(), "docker run failed: {out:?}");
    let container = Container(String::from_utf8_lossy(&out.stdout).trim().to_string());

    let runs: Vec<RunResults> = (0..6)
        .map(|j| run(&container.0, &format!("2026-01-01T00:00:{j:02}Z"), false))
        .collect();
    let mut baseline = Baseline::default();
    baseline.record_runs(&runs);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".clnrm/perf-baseline.toml");
    baseline.save_atomic(&path).expect("save baseline");
    let baseline = Baseline::load(&path)
        .expect("load baseline")
        .expect("just written");
    println!("{}", clnrm::perf::show(&baseline));

    let (unchanged, code_unchanged) = gate(&container.0, &baseline, false);
    print("unchanged re-run", &unchanged, code_unchanged);
    let (slowed, code_slowed) = gate(&container.0, &baseline, true);
    print(
        &format!("`sleep 0.25` added to {}", SCENARIOS[SLOWED].0),
        &slowed,
        code_slowed,
    );

    let named = slowed
        .rows
        .first()
        .is_some_and(|r| r.verdict.as_str() == "regressed" && r.scenario == SCENARIOS[SLOWED].0);
    let ok = code_unchanged == 0 && code_slowed == 3 && named;
    println!(
        "\nunchanged -> {code_unchanged}, slowed -> {code_slowed}, regression named: {named}: {}",
        if ok { "OK" } else { "FAILED" }
    );
    drop(container);
    std::process::exit(if ok { 0 } else { 1 });
}
