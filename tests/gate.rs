//! The perf gate end to end through the binary, on the local backend (no image needed):
//! record a baseline, pass unchanged, exit 3 on a confirmed slowdown, `--ack`, drift,
//! `--retries` with `--flaky-fail`, and one baseline file for shard balance and the gate.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

mod support;
use support::{clnrm, suite, text, write};

/// One host test per sleep: `p1` sleeps 50 ms, `p2` 100 ms, ...
fn perf_test(k: usize, script: &str) -> String {
    format!(
        "[meta]\nname = \"p{k}\"\n\n[service.sh]\n\n[[scenario]]\nname = \"work\"\n\n[[scenario.steps]]\nname = \"busy\"\nsh = \"{script}\"\n"
    )
}

fn perf_suite() -> tempfile::TempDir {
    let dir = suite(&[]);
    for k in 1..=5 {
        let script = format!("sleep 0.{:02}", 5 * k);
        write(
            dir.path(),
            &format!("suite/p{k}.clnrm.toml"),
            &perf_test(k, &script),
        );
    }
    dir
}

fn record(dir: &Path, baseline: &str) {
    let out = clnrm(
        dir,
        &[
            "baseline",
            "record",
            "suite",
            "--runs",
            "5",
            "--baseline",
            baseline,
            "--backend",
            "local",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("results written")).expect("JSON")
}

#[test]
fn gate_passes_unchanged_fails_a_confirmed_slowdown_and_honours_acks() {
    let dir = perf_suite();
    let d = dir.path();
    record(d, "base.toml");

    // Every phase is measured on every recorded run: discover and validate are
    // not one measurement copied N times.
    let show = clnrm(d, &["baseline", "show", "--baseline", "base.toml"]);
    assert_eq!(show.status.code(), Some(0));
    let baseline = clnrm::perf::Baseline::load(&d.join("base.toml"))
        .expect("readable")
        .expect("written");
    let validate: Vec<f64> = baseline.keys["phase:validate"]
        .history
        .iter()
        .map(|e| e.ms)
        .collect();
    assert_eq!(validate.len(), 5, "{}", text(&show.stdout));
    let distinct: std::collections::BTreeSet<u64> = validate.iter().map(|v| v.to_bits()).collect();
    assert!(
        distinct.len() > 1,
        "one measurement copied 5 times: {validate:?}"
    );

    let gate = [
        "run",
        "suite",
        "--backend",
        "local",
        "--gate",
        "--baseline",
        "base.toml",
    ];
    let out = clnrm(d, &gate);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("perf: gate passed"));

    write(
        d,
        "suite/p3.clnrm.toml",
        &perf_test(3, "sleep 0.15; sleep 0.3"),
    );
    let out = clnrm(d, &[&gate[..], &["--json", "r.json"]].concat());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("REGRESSED suite/p3.clnrm.toml#work"), "{err}");
    assert!(err.contains("re-measuring 3 times to confirm"), "{err}");
    let r = json(&d.join("r.json"));
    assert_eq!(r["perf"]["failed"], true);
    assert_eq!(r["perf"]["rows"][0]["verdict"], "regressed");
    assert_eq!(r["perf"]["rows"][0]["key"], "suite/p3.clnrm.toml#work");
    assert!(r["phases"]["gate"].as_f64().expect("gate phase timed") > 0.0);

    // Acknowledged: reported, not failing.
    let out = clnrm(
        d,
        &[&gate[..], &["--ack", "suite/p3.clnrm.toml#work"]].concat(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("ACKNOWLEDGED suite/p3.clnrm.toml#work"),
        "{err}"
    );

    // Drift against an anchor names every key.
    let out = clnrm(d, &["baseline", "anchor", "v1", "--baseline", "base.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = clnrm(d, &["baseline", "drift", "--baseline", "base.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let drift = text(&out.stdout);
    assert!(drift.contains("suite/p3.clnrm.toml#work"), "{drift}");
    let out = clnrm(
        d,
        &[
            "baseline",
            "drift",
            "--baseline",
            "base.toml",
            "--anchor",
            "v9",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn retries_make_a_flaky_scenario_and_flaky_fail_fails_it() {
    let dir = suite(&[]);
    let d = dir.path();
    let flag = d.join("flag");
    let script = format!(
        "if [ -f {0} ]; then rm {0}; exit 0; fi; touch {0}; exit 1",
        flag.display()
    );
    write(d, "flaky.clnrm.toml", &perf_test(1, &script));
    let out = clnrm(d, &["run", "--backend", "local", "--json", "a.json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no retries: the first attempt fails"
    );
    std::fs::remove_file(&flag).ok();
    let out = clnrm(
        d,
        &[
            "run",
            "--backend",
            "local",
            "--retries",
            "1",
            "--json",
            "b.json",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("RETRY p1 / work (attempt 1 failed"), "{err}");
    let b = json(&d.join("b.json"));
    assert_eq!(b["tests"][0]["scenarios"][0]["status"], "flaky");
    assert_eq!(b["tests"][0]["scenarios"][0]["attempts"], 2);
    std::fs::remove_file(&flag).ok();
    let out = clnrm(
        d,
        &[
            "run",
            "--backend",
            "local",
            "--retries",
            "1",
            "--flaky-fail",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn shard_balance_and_the_gate_read_the_same_baseline_file() {
    let dir = perf_suite();
    let d = dir.path();
    // Only the named file exists: a run that balanced shards from the default path would fall
    // back to hashing names.
    record(d, "named.toml");
    let baseline = clnrm::perf::Baseline::load(&d.join("named.toml"))
        .expect("readable")
        .expect("written");
    let mut durations: BTreeMap<String, f64> = BTreeMap::new();
    for (key, s) in baseline.key_stats() {
        if let Some((path, _)) = key.split_once('#') {
            *durations.entry(path.to_string()).or_default() += s.centre;
        }
    }
    let names: Vec<(String, Option<f64>)> = (1..=5)
        .map(|k| format!("suite/p{k}.clnrm.toml"))
        .map(|p| (p.clone(), durations.get(&p).copied()))
        .collect();
    let balanced = clnrm::plan::assign_shards(&names, 2);
    let without: Vec<(String, Option<f64>)> =
        names.iter().map(|(p, _)| (p.clone(), None)).collect();
    let hashed = clnrm::plan::assign_shards(&without, 2);
    assert_ne!(
        balanced, hashed,
        "the test needs splits that tell the two apart"
    );
    let expected: Vec<&str> = names
        .iter()
        .zip(&balanced)
        .filter(|(_, s)| **s == 0)
        .map(|((p, _), _)| p.as_str())
        .collect();

    let out = clnrm(
        d,
        &[
            "run",
            "suite",
            "--backend",
            "local",
            "--shard",
            "1/2",
            "--baseline",
            "named.toml",
            "--gate",
            "--json",
            "s1.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = json(&d.join("s1.json"));
    let ran: Vec<&str> = r["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| t["path"].as_str().expect("path"))
        .collect();
    assert_eq!(ran, expected);
    assert_eq!(r["perf"]["baseline_path"], "named.toml");
}
