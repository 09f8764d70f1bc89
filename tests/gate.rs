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
    // Without a baseline the gate passes, and says that it compared nothing.
    let out = clnrm(
        d,
        &[
            "run",
            "suite",
            "--backend",
            "local",
            "--gate",
            "--baseline",
            "none.toml",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: no baseline at `none.toml`"), "{err}");
    assert!(
        err.contains("notice: nothing was compared: `none.toml` holds no timing"),
        "{err}"
    );
    // An empty placeholder file: the same, with its own warning.
    write(d, "empty.toml", "# recorded by the nightly job\n");
    let out = clnrm(
        d,
        &[
            "run",
            "suite",
            "--backend",
            "local",
            "--gate",
            "--baseline",
            "empty.toml",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: the baseline `empty.toml` holds no timings yet"),
        "{err}"
    );
    assert!(err.contains("notice: nothing was compared"), "{err}");
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
    assert!(
        err.contains("perf: gate failed against `base.toml`: 1 regression"),
        "{err}"
    );
    // The line names the key, how much slower, beyond the runner speed, and the tolerance.
    let line = err
        .lines()
        .find(|l| l.contains("REGRESSED suite/p3.clnrm.toml#work"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(" beyond the runner speed factor "), "{line}");
    assert!(
        line.contains("tolerance 10 %); confirmed: median of 3 re-runs"),
        "{line}"
    );
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

    // Every scenario twice as slow: the runner as a whole was slower, not one scenario.
    for k in 1..=5 {
        let script = format!("sleep 0.{:02}; sleep 0.{:02}", 5 * k, 5 * k);
        write(d, &format!("suite/p{k}.clnrm.toml"), &perf_test(k, &script));
    }
    let out = clnrm(d, &gate);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("perf: gate failed against `base.toml`: the runner as a whole was slower"),
        "{err}"
    );
    assert!(
        err.contains("median current/baseline over 5 scenarios; warn above 1.20, fail above 1.35)"),
        "{err}"
    );
    for k in 1..=5 {
        write(
            d,
            &format!("suite/p{k}.clnrm.toml"),
            &perf_test(k, &format!("sleep 0.{:02}", 5 * k)),
        );
    }

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
    assert!(err.contains("TRY 1 FAIL  p1 / work ("), "{err}");
    assert!(err.contains("FLAKY 2/2 p1 / work ("), "{err}");
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
