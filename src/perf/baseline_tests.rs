//! Tests of the baseline file model (kept apart to keep `baseline.rs` short).

use super::*;
use crate::perf::measure::fixtures::run;
use proptest::prelude::*;

fn fp(cpu: &str) -> Fingerprint {
    Fingerprint {
        cpu_model: cpu.into(),
        cores: 2,
        kernel: "Linux 6.1".into(),
        docker_version: Some("20.10".into()),
    }
}

#[test]
fn missing_file_is_none_and_save_load_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".clnrm/perf-baseline.toml");
    assert_eq!(Baseline::load(&path).expect("missing is fine"), None);
    let mut b = Baseline::default();
    b.append_run(
        &run("2026-11-23T10:00:00Z", &[("t/a.toml", "happy path", 12.5)]),
        &fp("x"),
    );
    b.append_run(
        &run("2026-11-23T11:00:00Z", &[("t/a.toml", "happy path", 13.0)]),
        &fp("x"),
    );
    b.thresholds.insert("validation_ms".into(), 100.0);
    b.set_anchor("v0.1.0", "2026-11-23T11:00:00Z");
    b.save_atomic(&path).expect("save");
    let text = std::fs::read_to_string(&path).expect("written");
    let h = fingerprint_hash(&fp("x"));
    assert!(text.contains(&format!(
        "[keys.\"t/a.toml#happy path\"]\nhistory = [\n  {{ ms = 12.5, fp = \"{h}\", at = \"2026-11-23T10:00:00Z\" }},\n  {{ ms = 13.0, fp = \"{h}\", at = \"2026-11-23T11:00:00Z\" }},\n]\n"
    )), "{text}");
    assert!(
        text.contains(&format!(
            "[fingerprints]\n{h} = \"x, 2 cores, Linux 6.1, docker 20.10\"\n"
        )),
        "{text}"
    );
    assert_eq!(Baseline::load(&path).expect("load"), Some(b));
    // No temp file is left next to the baseline.
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("perf-baseline.toml")]);
}

#[test]
fn save_into_a_file_path_is_a_located_io_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").expect("write");
    let err = Baseline::default()
        .save_atomic(&blocker.join("perf-baseline.toml"))
        .expect_err("parent is a file");
    assert!(
        matches!(
            err,
            PerfError::Io {
                action: "create the directory of",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("not-a-dir/perf-baseline.toml"),
        "{err}"
    );
}

#[test]
fn window_trims_oldest_and_prunes_fingerprints() {
    let mut b = Baseline {
        window: 3,
        ..Baseline::default()
    };
    for i in 0..5 {
        let cpu = if i == 0 { "old" } else { "new" };
        b.append_run(&run(&format!("r{i}"), &[("a", "s", i as f64)]), &fp(cpu));
    }
    let ms: Vec<f64> = b.keys["a#s"].history.iter().map(|e| e.ms).collect();
    assert_eq!(ms, vec![2.0, 3.0, 4.0]);
    assert_eq!(
        b.fingerprints.keys().cloned().collect::<Vec<_>>(),
        vec![fingerprint_hash(&fp("new"))]
    );
}

#[test]
fn record_runs_appends_one_entry_per_run() {
    let mut b = Baseline::default();
    let runs: Vec<RunResults> = (0..4)
        .map(|i| {
            run(
                &format!("r{i}"),
                &[("a", "x", 10.0 + i as f64), ("a", "y", 5.0)],
            )
        })
        .collect();
    b.record_runs(&runs);
    assert_eq!(b.keys["a#x"].history.len(), 4);
    assert_eq!(b.keys["a#y"].history.len(), 4);
}

#[test]
fn parse_errors_are_located() {
    let p = Path::new("b.toml");
    let err = Baseline::parse("version = 1\nwindow = \"x\"\n", p).expect_err("bad type");
    assert!(err.to_string().starts_with("b.toml:2:10: "), "{err}");
    let err = Baseline::parse("version = 1\n[keys.\"a#b\"]\nhistroy = []\n", p).expect_err("typo");
    assert!(err.to_string().starts_with("b.toml:3:1: "), "{err}");
    let err = Baseline::parse("version = 2\n", p).expect_err("future");
    assert!(matches!(err, PerfError::Version { found: 2, .. }), "{err}");
    let err = Baseline::parse("version = 1\n[thresholds]\nvalidaton_ms = 3.0\n", p)
        .expect_err("unknown metric");
    assert!(
        err.to_string().contains("did you mean `validation_ms`"),
        "{err}"
    );
}

#[test]
fn hand_written_simple_form_is_accepted() {
    let text = "version = 1\n[baselines]\nvalidation_ms = 40\n[thresholds]\nvalidation_ms = 80.5\nscenario_execution_s = 2\n";
    let b = Baseline::parse(text, Path::new("b.toml")).expect("valid");
    assert_eq!(b.baselines["validation_ms"], 40.0);
    assert_eq!(b.thresholds["scenario_execution_s"], 2.0);
    assert_eq!(b.window, DEFAULT_WINDOW);
}

#[test]
fn run_speed_of_past_runs_is_removed_from_the_spread() {
    // Five scenarios, ten runs; run j is slower by a common factor, each key steady.
    let mut b = Baseline::default();
    for j in 0..10 {
        let f = 1.0 + 0.05 * j as f64;
        let sc: Vec<(String, f64)> = (0..5)
            .map(|k| (format!("s{k}"), 100.0 * (k + 1) as f64 * f))
            .collect();
        let refs: Vec<(&str, &str, f64)> = sc.iter().map(|(n, v)| ("a", n.as_str(), *v)).collect();
        b.append_run(&run(&format!("r{j}"), &refs), &fp("x"));
    }
    let stats = b.key_stats();
    let s = &stats["a#s2"];
    assert_eq!(s.n, 10);
    assert_eq!(s.spread, stats::SPREAD_FLOOR);
    // Centre is at the median runner speed (1.20 / 1.25 between runs 4 and 5).
    assert!((s.centre - 300.0 * 1.225).abs() < 1.0, "{}", s.centre);
}

fn arb_text() -> impl Strategy<Value = String> {
    "[ -~éß\"\\\\#\n\t]{0,12}"
}

proptest! {
    #[test]
    fn toml_round_trips(
        keys in proptest::collection::btree_map(arb_text(), proptest::collection::vec((0.0f64..1e7, arb_text(), arb_text()), 0..4), 0..5),
        budget in proptest::option::of(0.0f64..1e6),
        label in arb_text(),
        window in 1usize..50,
        threshold in 0.0f64..1e4,
    ) {
        let mut b = Baseline { window, ..Baseline::default() };
        for (k, entries) in keys {
            let s = b.keys.entry(k.clone()).or_default();
            s.budget_ms = budget;
            for (ms, fp, at) in entries {
                s.history.push(Entry { ms, fp: fp.clone(), at });
                b.fingerprints.insert(fp, label.clone());
            }
        }
        b.thresholds.insert("total_s".into(), threshold);
        b.set_anchor(&label, "2026-11-23T00:00:00Z");
        let text = b.to_toml();
        let back = Baseline::parse(&text, Path::new("p")).expect("own output parses");
        prop_assert_eq!(back, b);
    }
}

#[test]
fn a_file_with_nothing_in_it_is_an_empty_baseline_and_a_missing_one_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.toml");
    assert!(Baseline::load(&path).unwrap().is_none());
    for text in ["", "\n", "# recorded by the nightly job\n"] {
        std::fs::write(&path, text).unwrap();
        let b = Baseline::load(&path).unwrap().expect("an empty baseline");
        assert!(b.key_stats().is_empty());
    }
    // Anything else is read as a baseline, and must be one.
    std::fs::write(&path, "window = 5\n").unwrap();
    assert!(Baseline::load(&path).is_err());
}
