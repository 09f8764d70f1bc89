//! Tests of screening and confirmation (kept apart to keep `gate.rs` short).

use super::*;
use crate::perf::measure::fixtures::run;
use crate::results::{Fingerprint, Phase};
use proptest::prelude::*;

const KEYS: usize = 10;

fn base(k: usize) -> f64 {
    100.0 * (k + 1) as f64
}

/// Deterministic +-2 % noise, different per key and run.
fn wiggle(k: usize, j: usize) -> f64 {
    1.0 + 0.02 * ((k * 7 + j * 3) as f64).sin()
}

fn history(runs: usize) -> Baseline {
    let mut b = Baseline::default();
    for j in 0..runs {
        let names: Vec<String> = (0..KEYS).map(|k| format!("s{k}")).collect();
        let sc: Vec<(&str, &str, f64)> = (0..KEYS)
            .map(|k| ("t.toml", names[k].as_str(), base(k) * wiggle(k, j)))
            .collect();
        let r = run(&format!("h{j}"), &sc);
        b.append_run(&r, &r.fingerprint.clone());
    }
    b
}

/// A PR run on a runner `speed` times slower, with per-key extra factors.
fn pr(speed: f64, extra: &[(usize, f64)]) -> RunResults {
    let names: Vec<String> = (0..KEYS).map(|k| format!("s{k}")).collect();
    let sc: Vec<(&str, &str, f64)> = (0..KEYS)
        .map(|k| {
            let x = extra.iter().find(|(i, _)| *i == k).map_or(1.0, |(_, f)| *f);
            ("t.toml", names[k].as_str(), base(k) * speed * x)
        })
        .collect();
    run("pr", &sc)
}

fn verdict(s: &PerfSummary, key: &str) -> &'static str {
    s.rows
        .iter()
        .find(|r| r.key == key)
        .expect("row exists")
        .verdict
        .as_str()
}

fn remeasure(keys: &[String], value: f64) -> BTreeMap<String, Vec<f64>> {
    keys.iter()
        .map(|k| (k.clone(), vec![value * 0.99, value, value * 1.01]))
        .collect()
}

#[test]
fn slow_runner_alone_is_not_a_regression() {
    let b = history(10);
    let cfg = GateConfig::default();
    let sc = screen(&pr(1.25, &[]), &b, &cfg);
    assert!(sc.flagged().is_empty());
    let f = sc.speed_factor().expect("estimated");
    assert!((f - 1.25).abs() < 0.01, "{f}");
    let s = confirm(sc, &BTreeMap::new(), &cfg);
    assert_eq!(s.speed_verdict.as_str(), "warn");
    assert!(!s.failed);
    assert!(
        s.rows.iter().all(|r| r.verdict.as_str() == "unchanged"),
        "{:?}",
        s.rows
    );
    assert_eq!(s.rows.len(), KEYS);
    let r = s.rows.iter().find(|r| r.key == "t.toml#s2").expect("row");
    assert!((r.normalised_ratio.expect("has baseline") - 1.0).abs() < 0.03);
    assert!(r.fingerprint_match);
    assert!(r.low_resolution); // 375 ms < 500 ms
    assert!(r.mde.expect("n = 10") < 0.2);
}

#[test]
fn confirmed_slowdown_regresses_and_sorts_first() {
    let b = history(10);
    let cfg = GateConfig::default();
    let sc = screen(&pr(0.9, &[(4, 1.5)]), &b, &cfg);
    assert_eq!(sc.flagged(), vec!["t.toml#s4".to_string()]);
    let again = remeasure(&sc.flagged(), base(4) * 0.9 * 1.5);
    let s = confirm(sc, &again, &cfg);
    assert!(s.failed);
    assert_eq!(s.rows[0].key, "t.toml#s4");
    assert_eq!(s.rows[0].verdict.as_str(), "regressed");
    assert_eq!(s.rows[0].test, "t.toml");
    assert_eq!(s.rows[0].scenario, "s4");
    assert_eq!(s.speed_verdict.as_str(), "ok");
    assert!(
        s.notes
            .iter()
            .any(|n| n == "1 flagged scenario re-measured"),
        "{:?}",
        s.notes
    );
}

#[test]
fn unconfirmed_flag_is_a_warning_and_ack_forgives() {
    let b = history(10);
    let mut cfg = GateConfig::default();
    let sc = screen(&pr(1.0, &[(2, 1.4)]), &b, &cfg);
    let again = remeasure(&sc.flagged(), base(2));
    let s = confirm(sc.clone(), &again, &cfg);
    assert_eq!(verdict(&s, "t.toml#s2"), "warn");
    assert!(!s.failed);
    // Not re-measured at all: warning by default, regression for offline `clnrm gate`.
    assert_eq!(
        verdict(&confirm(sc.clone(), &BTreeMap::new(), &cfg), "t.toml#s2"),
        "warn"
    );
    cfg.unconfirmed_fails = true;
    assert_eq!(
        verdict(&confirm(sc.clone(), &BTreeMap::new(), &cfg), "t.toml#s2"),
        "regressed"
    );
    cfg.acks.insert("s2".into());
    let s = confirm(sc, &BTreeMap::new(), &cfg);
    assert_eq!(verdict(&s, "t.toml#s2"), "acknowledged");
    assert!(!s.failed);
}

#[test]
fn young_history_is_advisory_only() {
    let b = history(4);
    let cfg = GateConfig::default();
    let sc = screen(&pr(1.0, &[(1, 2.0)]), &b, &cfg);
    let again = remeasure(&sc.flagged(), base(1) * 2.0);
    let s = confirm(sc, &again, &cfg);
    assert_eq!(verdict(&s, "t.toml#s1"), "warn");
    assert!(s.rows[0]
        .note
        .as_deref()
        .expect("note")
        .starts_with("advisory: 4 history entries"));
    assert!(!s.failed);
    // A slow runner measured against young keys only warns, too.
    let s = confirm(screen(&pr(1.5, &[]), &b, &cfg), &BTreeMap::new(), &cfg);
    assert_eq!((s.speed_verdict.as_str(), s.failed), ("warn", false));
}

#[test]
fn improved_inconclusive_new_missing_and_speed_fail() {
    let mut b = history(10);
    // A key with a 4.5 % spread and a 5 % tolerance: +8 % is above tolerance but inside the
    // noise bound (about 13 %).
    b.keys
        .get_mut("t.toml#s5")
        .expect("key")
        .history
        .iter_mut()
        .enumerate()
        .for_each(|(j, e)| e.ms = base(5) * [1.03, 0.97, 1.0][j % 3]);
    let mut r = pr(1.0, &[(0, 0.7), (5, 1.08)]);
    r.tests[0].scenarios.retain(|s| s.name != "s9");
    r.tests[0]
        .scenarios
        .push(crate::perf::measure::fixtures::scenario(
            "brand new",
            10.0,
            crate::results::Status::Passed,
        ));
    let mut cfg = GateConfig::default();
    cfg.per_key_tolerance.insert("t.toml#s5".into(), 0.05);
    let s = confirm(screen(&r, &b, &cfg), &BTreeMap::new(), &cfg);
    assert_eq!(verdict(&s, "t.toml#s0"), "improved");
    assert_eq!(verdict(&s, "t.toml#s5"), "inconclusive");
    assert_eq!(verdict(&s, "t.toml#s9"), "missing");
    let s9 = s.rows.iter().find(|r| r.key == "t.toml#s9").expect("row");
    assert!(s9
        .note
        .as_deref()
        .expect("note")
        .starts_with("not in this run"));
    assert_eq!(verdict(&s, "t.toml#brand new"), "new");
    assert!(!s.failed);
    let order: Vec<&str> = s.rows.iter().map(|r| r.verdict.as_str()).take(4).collect();
    assert_eq!(order, vec!["inconclusive", "missing", "new", "improved"]);

    let s = confirm(screen(&pr(1.4, &[]), &b, &cfg), &BTreeMap::new(), &cfg);
    assert_eq!(s.speed_verdict.as_str(), "fail");
    assert!(s.failed);
}

#[test]
fn failed_scenario_is_missing_with_a_reason() {
    let b = history(10);
    let mut r = pr(1.0, &[]);
    r.tests[0].scenarios[6].status = crate::results::Status::Failed;
    let cfg = GateConfig::default();
    let mut b = b;
    b.keys
        .entry("t.toml#budget only".into())
        .or_default()
        .budget_ms = Some(5.0);
    let s = confirm(screen(&r, &b, &cfg), &BTreeMap::new(), &cfg);
    assert_eq!(verdict(&s, "t.toml#budget only"), "missing");
    let row = s.rows.iter().find(|r| r.key == "t.toml#s6").expect("row");
    assert_eq!(row.verdict.as_str(), "missing");
    assert_eq!(
        row.note.as_deref(),
        Some("scenario failed or was skipped: not timed")
    );
    assert!(!s.failed);
}

#[test]
fn too_noisy_keys_say_so() {
    let mut b = history(10);
    b.keys
        .get_mut("t.toml#s7")
        .expect("key")
        .history
        .iter_mut()
        .enumerate()
        .for_each(|(j, e)| e.ms *= if j % 2 == 0 { 1.2 } else { 0.8 });
    let cfg = GateConfig::default();
    let s = confirm(screen(&pr(1.0, &[]), &b, &cfg), &BTreeMap::new(), &cfg);
    let row = s.rows.iter().find(|r| r.key == "t.toml#s7").expect("row");
    assert_eq!(row.verdict.as_str(), "too-noisy");
    assert!(row.mde.expect("bound") > 0.2);
    assert!(row
        .note
        .as_deref()
        .expect("note")
        .contains("record more runs"));
}

#[test]
fn hard_budget_fails_at_once_and_tolerance_overrides_apply() {
    let b = history(10);
    let mut cfg = GateConfig::default();
    let mut perf = crate::suite::model::PerfSpec::default();
    perf.scenario_max_ms.insert("s0".into(), 50.0);
    perf.tolerance = Some(0.6);
    cfg.budgets.add_test("t.toml", &perf);
    // +40 % on s3 is inside the test file's 60 % tolerance.
    let sc = screen(&pr(1.0, &[(3, 1.4)]), &b, &cfg);
    assert!(sc.flagged().is_empty());
    let s = confirm(sc, &BTreeMap::new(), &cfg);
    assert_eq!(s.rows[0].verdict.as_str(), "budget-exceeded");
    assert_eq!(s.rows[0].budget_ms, Some(50.0));
    assert!(s.failed);
    cfg.per_key_tolerance.insert("t.toml#s3".into(), 0.1);
    assert_eq!(
        screen(&pr(1.0, &[(3, 1.4)]), &b, &cfg).flagged(),
        vec!["t.toml#s3".to_string()]
    );
}

#[test]
fn metric_thresholds_become_rows() {
    let mut b = history(10);
    b.thresholds.insert("validation_ms".into(), 20.0);
    b.baselines.insert("validation_ms".into(), 15.0);
    let mut r = pr(1.0, &[]);
    r.phases.insert(Phase::Validate, 31.0);
    let cfg = GateConfig::default();
    let s = confirm(screen(&r, &b, &cfg), &BTreeMap::new(), &cfg);
    let row = &s.rows[0];
    assert_eq!(
        (row.key.as_str(), row.verdict.as_str()),
        ("metric:validation_ms", "budget-exceeded")
    );
    assert_eq!(
        (row.baseline_ms, row.current_ms, row.budget_ms),
        (Some(15.0), 31.0, Some(20.0))
    );
    assert!(s.failed);
    // The phase itself is new (no history): reported, never failing.
    assert_eq!(verdict(&s, "phase:validate"), "new");
}

#[test]
fn other_runner_fingerprint_is_reported() {
    let b = history(10);
    let mut r = pr(1.0, &[]);
    r.fingerprint = Fingerprint {
        cpu_model: "other".into(),
        ..r.fingerprint
    };
    let cfg = GateConfig::default();
    let s = confirm(screen(&r, &b, &cfg), &BTreeMap::new(), &cfg);
    assert!(s.rows.iter().all(|r| !r.fingerprint_match));
    assert!(
        s.notes
            .iter()
            .any(|n| n.starts_with("this runner's fingerprint is not in the baseline")),
        "{:?}",
        s.notes
    );
    let same = confirm(screen(&pr(1.0, &[]), &b, &cfg), &BTreeMap::new(), &cfg);
    assert!(
        !same.notes.iter().any(|n| n.contains("fingerprint")),
        "{:?}",
        same.notes
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Common-mode speed never changes a scenario's verdict (only the speed verdict).
    #[test]
    fn verdicts_are_invariant_to_runner_speed(speed in 0.5f64..2.0, k in 0usize..KEYS, slow in 1.0f64..2.0) {
        let b = history(10);
        let cfg = GateConfig::default();
        let at_one = screen(&pr(1.0, &[(k, slow)]), &b, &cfg);
        let scaled = screen(&pr(speed, &[(k, slow)]), &b, &cfg);
        prop_assert_eq!(at_one.flagged(), scaled.flagged());
        let v1: Vec<String> = confirm(at_one, &BTreeMap::new(), &cfg).rows.into_iter().map(|r| r.verdict.to_string()).collect();
        let v2: Vec<String> = confirm(scaled, &BTreeMap::new(), &cfg).rows.into_iter().map(|r| r.verdict.to_string()).collect();
        prop_assert_eq!(v1, v2);
    }
}

#[test]
fn the_summary_counts_what_was_compared_and_says_when_it_is_too_little() {
    let cfg = GateConfig::default();
    let b = history(6);
    let s = confirm(screen(&pr(1.0, &[]), &b, &cfg), &BTreeMap::new(), &cfg);
    assert_eq!(s.compared, KEYS);
    assert_eq!(
        (s.speed_warn_above, s.speed_fail_above),
        (Some(1.2), Some(1.35))
    );
    assert!(
        s.rows
            .iter()
            .filter(|r| !measure::is_phase(&r.key))
            .all(|r| r.tolerance == Some(0.10)),
        "{:?}",
        s.rows
    );
    assert!(
        !s.notes.iter().any(|n| n.contains("compared")),
        "{:?}",
        s.notes
    );

    // An empty baseline: nothing compared, and the notes say so.
    let s = confirm(
        screen(&pr(1.0, &[]), &Baseline::default(), &cfg),
        &BTreeMap::new(),
        &cfg,
    );
    assert_eq!(s.compared, 0);
    assert!(!s.failed);
    assert!(
        s.notes.iter().any(|n| n.starts_with("nothing compared")),
        "{:?}",
        s.notes
    );

    // One scenario twice as slow, alone in the run: it reads as runner speed, and the notes
    // say the run was too small to tell.
    let one = run("pr", &[("t.toml", "s0", base(0) * 2.0)]);
    let s = confirm(screen(&one, &b, &cfg), &BTreeMap::new(), &cfg);
    assert_eq!(s.compared, 1);
    assert_eq!(s.speed_factor.map(|f| (f * 100.0).round()), Some(200.0));
    assert!(s.rows.iter().all(|r| r.verdict != Verdict::Regressed));
    assert!(
        s.notes
            .iter()
            .any(|n| n.starts_with("the runner's speed rests on 1 scenario: too few")),
        "{:?}",
        s.notes
    );
}
