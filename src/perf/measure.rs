//! What the gate measures in one run: keys and values taken from `RunResults`.
//!
//! Keys: `<test path>#<scenario name>` for scenario step time (`step_ms`), `phase:<name>` for
//! tool phases of the run (`RunResults.phases`: validate, plan, ...) and
//! `phase:infra.<name>` for infrastructure phases of scenarios (create, start, ready,
//! cleanup, env_wait), aggregated as the median over the run's scenarios. The `infra.`
//! prefix keeps the scenario `cleanup` apart from the tool phase `cleanup`.

use std::collections::{BTreeMap, BTreeSet};

use crate::results::{Phase, RunResults};

use super::stats;

/// Scenarios whose step time is below this are marked low-resolution: a bollard exec costs
/// about 30 ms with a jitter that a handful of steps can add up to about 0.5 s here.
pub const LOW_RESOLUTION_MS: f64 = 500.0;

/// Prefix of phase keys.
pub const PHASE_PREFIX: &str = "phase:";
/// Prefix of infrastructure phase keys (after [`PHASE_PREFIX`]).
pub const INFRA_PREFIX: &str = "infra.";

/// Key of one scenario.
pub fn scenario_key(test_path: &str, scenario: &str) -> String {
    format!("{test_path}#{scenario}")
}

/// Whether a key names a phase rather than a scenario.
pub fn is_phase(key: &str) -> bool {
    key.starts_with(PHASE_PREFIX)
}

/// (test path, scenario name) of a scenario key; ("", phase name) for a phase key.
pub fn split_key(key: &str) -> (String, String) {
    if let Some(p) = key.strip_prefix(PHASE_PREFIX) {
        return (String::new(), p.to_string());
    }
    // Split at the first `#`: scenario names ("issue #5") are likelier to hold one than paths.
    match key.split_once('#') {
        Some((t, s)) => (t.to_string(), s.to_string()),
        None => (String::new(), key.to_string()),
    }
}

/// Values of every gated key in one run. Failed, timed-out and skipped scenarios are left
/// out: their time says nothing about the speed of the code under test.
pub fn measurements(results: &RunResults) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut infra: BTreeMap<Phase, Vec<f64>> = BTreeMap::new();
    for test in &results.tests {
        for sc in &test.scenarios {
            if sc.status.is_failure() || sc.status == crate::results::Status::Skipped {
                continue;
            }
            if sc.step_ms.is_finite() && sc.step_ms >= 0.0 {
                out.insert(scenario_key(&test.path, &sc.name), sc.step_ms);
            }
            for (name, ms) in &sc.phases {
                if ms.is_finite() && *ms >= 0.0 {
                    infra.entry(*name).or_default().push(*ms);
                }
            }
        }
    }
    for (name, values) in infra {
        if let Some(m) = stats::median(&values) {
            out.insert(format!("{PHASE_PREFIX}{INFRA_PREFIX}{name}"), m);
        }
    }
    for (name, ms) in &results.phases {
        if ms.is_finite() && *ms >= 0.0 {
            out.insert(format!("{PHASE_PREFIX}{name}"), *ms);
        }
    }
    out
}

/// Test paths present in a run (a shard only holds some): keys of other tests are not
/// reported `missing`.
pub fn tested_paths(results: &RunResults) -> BTreeSet<String> {
    results.tests.iter().map(|t| t.path.clone()).collect()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Builders shared by the perf tests and the simulation.

    use crate::results::{Fingerprint, RunResults, ScenarioResult, Status, TestResult};

    /// A run with one test per distinct path; `scenarios` are (path, name, step_ms).
    pub fn run(at: &str, scenarios: &[(&str, &str, f64)]) -> RunResults {
        super::super::sim::build_results(
            at,
            &Fingerprint {
                cpu_model: "cpu".into(),
                cores: 2,
                kernel: "Linux 6.1".into(),
                docker_version: None,
            },
            scenarios
                .iter()
                .map(|(p, n, ms)| (p.to_string(), n.to_string(), *ms)),
        )
    }

    pub fn scenario(name: &str, step_ms: f64, status: Status) -> ScenarioResult {
        ScenarioResult {
            duration_ms: step_ms,
            step_ms,
            ..ScenarioResult::new(name, 1, status)
        }
    }

    pub fn test(path: &str, scenarios: Vec<ScenarioResult>) -> TestResult {
        TestResult {
            name: path.into(),
            path: path.into(),
            tags: vec![],
            status: Status::Passed,
            duration_ms: 0.0,
            scenarios,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::results::Status;

    #[test]
    fn keys_values_and_phase_medians() {
        let mut r = run("t0", &[]);
        let mut a = scenario("a", 100.0, Status::Passed);
        a.phases.insert(Phase::Start, 150.0);
        a.phases.insert(Phase::Cleanup, 70.0);
        let mut b = scenario("b", 200.0, Status::Flaky);
        b.phases.insert(Phase::Start, 170.0);
        let mut c = scenario("c", 5.0, Status::Failed);
        c.phases.insert(Phase::Start, 9999.0);
        r.tests = vec![test("t/x.clnrm.toml", vec![a, b, c])];
        r.phases.insert(Phase::Validate, 12.5);
        r.phases.insert(Phase::Cleanup, 80.0);
        let m = measurements(&r);
        let got: Vec<(&str, f64)> = m.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            got,
            vec![
                ("phase:cleanup", 80.0),
                ("phase:infra.cleanup", 70.0),
                ("phase:infra.start", 160.0),
                ("phase:validate", 12.5),
                ("t/x.clnrm.toml#a", 100.0),
                ("t/x.clnrm.toml#b", 200.0),
            ]
        );
    }

    #[test]
    fn split_keys() {
        assert_eq!(split_key("a/b.toml#x#y"), ("a/b.toml".into(), "x#y".into()));
        assert_eq!(split_key("phase:validate"), ("".into(), "validate".into()));
        assert!(is_phase("phase:infra.start"));
        assert!(!is_phase("a#phase:x"));
    }
}
