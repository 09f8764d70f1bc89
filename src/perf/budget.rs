//! Hard budgets: limits that fail the gate at once, without statistics.
//!
//! Three sources: the test file's `[perf]` (per scenario and per step `max_ms`), the
//! baseline's per-key `budget_ms`, and the simple form `[thresholds] metric = value` (with
//! `[baselines] metric = value` as the reported reference) over the run-level metrics of
//! [`METRICS`].

use std::collections::BTreeMap;

use crate::results::{Phase, RunResults};
use crate::suite::model::PerfSpec;

use super::baseline::Baseline;
use super::{measure, stats};

/// Run-level metrics of the simple form: (name, what it maps to in `RunResults`).
/// Names ending in `_s` are in seconds, `_ms` in milliseconds.
pub const METRICS: &[(&str, &str)] = &[
    (
        "validation_ms",
        "tool phase `validate` (`RunResults.phases.validate`)",
    ),
    ("discover_ms", "tool phase `discover`"),
    ("plan_ms", "tool phase `plan`"),
    ("render_ms", "tool phase `render`"),
    ("run_ms", "tool phase `run` (executing all scenarios)"),
    (
        "watch_reaction_ms",
        "tool phase `watch_reaction` (save to result, watch mode)",
    ),
    (
        "total_ms",
        "wall time of the whole run (`RunResults.duration_ms`)",
    ),
    ("total_s", "wall time of the whole run, seconds"),
    (
        "scenario_execution_ms",
        "slowest executed scenario, wall time (`ScenarioResult.duration_ms`)",
    ),
    (
        "scenario_execution_s",
        "slowest executed scenario, wall time, seconds",
    ),
    (
        "step_time_ms",
        "slowest scenario step time (`ScenarioResult.step_ms`)",
    ),
    (
        "container_create_ms",
        "median over scenarios of infrastructure phase `create`",
    ),
    (
        "container_start_ms",
        "median over scenarios of infrastructure phase `start`",
    ),
    (
        "container_ready_ms",
        "median over scenarios of infrastructure phase `ready`",
    ),
    (
        "container_cleanup_ms",
        "median over scenarios of infrastructure phase `cleanup`",
    ),
];

/// `Ok` for a known metric, else the closest known name (if any is close).
pub fn check_metric(name: &str) -> Result<(), Option<String>> {
    if METRICS.iter().any(|(m, _)| *m == name) {
        return Ok(());
    }
    let best = METRICS
        .iter()
        .map(|(m, _)| (strsim::jaro_winkler(name, m), *m))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.8)
        .map(|(_, m)| m.to_string());
    Err(best)
}

/// Value of a simple-form metric in a run (in the metric's own unit); `None` when the run
/// did not measure it (e.g. `watch_reaction_ms` outside watch mode).
pub fn metric_value(results: &RunResults, metric: &str) -> Option<f64> {
    let executed = || {
        results
            .tests
            .iter()
            .flat_map(|t| &t.scenarios)
            .filter(|s| s.status != crate::results::Status::Skipped)
    };
    let infra = |phase: Phase| {
        let v: Vec<f64> = executed()
            .filter_map(|s| s.phases.get(&phase).copied())
            .collect();
        stats::median(&v)
    };
    let max = |it: &mut dyn Iterator<Item = f64>| it.reduce(f64::max);
    match metric {
        "validation_ms" => results.phases.get(&Phase::Validate).copied(),
        "discover_ms" | "plan_ms" | "render_ms" | "run_ms" | "watch_reaction_ms" => {
            let phase = Phase::parse(metric.trim_end_matches("_ms"))?;
            results.phases.get(&phase).copied()
        }
        "total_ms" => Some(results.duration_ms),
        "total_s" => Some(results.duration_ms / 1000.0),
        "scenario_execution_ms" => max(&mut executed().map(|s| s.duration_ms)),
        "scenario_execution_s" => max(&mut executed().map(|s| s.duration_ms)).map(|v| v / 1000.0),
        "step_time_ms" => max(&mut executed().map(|s| s.step_ms)),
        "container_create_ms" => infra(Phase::Create),
        "container_start_ms" => infra(Phase::Start),
        "container_ready_ms" => infra(Phase::Ready),
        "container_cleanup_ms" => infra(Phase::Cleanup),
        _ => None,
    }
}

/// Budgets and tolerances collected from the test files' `[perf]` tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Budgets {
    /// Scenario key -> max step time, ms.
    pub scenario_max_ms: BTreeMap<String, f64>,
    /// Test path -> max step time of every scenario of that test (`[perf] max_ms`).
    pub test_max_ms: BTreeMap<String, f64>,
    /// `path#scenario/step` -> max step duration, ms.
    pub step_max_ms: BTreeMap<String, f64>,
    /// Test path -> gate tolerance of its scenarios.
    pub tolerance: BTreeMap<String, f64>,
}

impl Budgets {
    /// Add one test file's `[perf]`. `path` must be spelled as in `TestResult.path`.
    /// A scenario name `*` in `scenario_max_ms` applies to every scenario of the test.
    pub fn add_test(&mut self, path: &str, perf: &PerfSpec) {
        for (name, ms) in &perf.scenario_max_ms {
            if name == "*" {
                self.test_max_ms.insert(path.to_string(), *ms);
            } else {
                self.scenario_max_ms
                    .insert(measure::scenario_key(path, name), *ms);
            }
        }
        for (name, ms) in &perf.step_max_ms {
            self.step_max_ms
                .insert(measure::scenario_key(path, name), *ms);
        }
        if let Some(t) = perf.tolerance {
            self.tolerance.insert(path.to_string(), t);
        }
    }

    /// Budget of a scenario key from the test file (scenario entry wins over `*`).
    pub fn scenario_budget(&self, key: &str) -> Option<f64> {
        self.scenario_max_ms.get(key).copied().or_else(|| {
            let (test, _) = measure::split_key(key);
            self.test_max_ms.get(&test).copied()
        })
    }
}

/// One broken hard budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetBreach {
    /// Scenario key, `phase:<name>`, or `metric:<name>` for the simple form.
    pub key: String,
    /// What was limited: `step_ms`, `step <name>`, or the metric name.
    pub what: String,
    pub limit: f64,
    pub actual: f64,
    /// `ms` or `s`.
    pub unit: &'static str,
    /// `test file [perf]`, `baseline budget_ms` or `baseline [thresholds]`.
    pub source: &'static str,
}

impl std::fmt::Display for BudgetBreach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {:.1} {u} > budget {:.1} {u} ({})",
            self.key,
            self.what,
            self.actual,
            self.limit,
            self.source,
            u = self.unit
        )
    }
}

/// Every broken hard budget of a run, sorted by key.
pub fn hard_budgets(
    results: &RunResults,
    baseline: Option<&Baseline>,
    budgets: &Budgets,
) -> Vec<BudgetBreach> {
    let mut out = Vec::new();
    let values = measure::measurements(results);
    for (key, actual) in &values {
        let from_test = if measure::is_phase(key) {
            None
        } else {
            budgets.scenario_budget(key)
        };
        let from_file = baseline
            .and_then(|b| b.keys.get(key))
            .and_then(|s| s.budget_ms);
        for (limit, source) in [
            (from_test, "test file [perf]"),
            (from_file, "baseline budget_ms"),
        ] {
            if let Some(limit) = limit.filter(|l| actual > l) {
                out.push(BudgetBreach {
                    key: key.clone(),
                    what: "step_ms".into(),
                    limit,
                    actual: *actual,
                    unit: "ms",
                    source,
                });
            }
        }
    }
    for test in &results.tests {
        for sc in &test.scenarios {
            for step in &sc.steps {
                let key = measure::scenario_key(&test.path, &sc.name);
                let Some(limit) = budgets.step_max_ms.get(&format!("{key}/{}", step.name)) else {
                    continue;
                };
                if step.duration_ms > *limit {
                    out.push(BudgetBreach {
                        key,
                        what: format!("step `{}`", step.name),
                        limit: *limit,
                        actual: step.duration_ms,
                        unit: "ms",
                        source: "test file [perf]",
                    });
                }
            }
        }
    }
    if let Some(b) = baseline {
        for (metric, limit) in &b.thresholds {
            if let Some(actual) = metric_value(results, metric).filter(|v| v > limit) {
                out.push(BudgetBreach {
                    key: format!("metric:{metric}"),
                    what: metric.clone(),
                    limit: *limit,
                    actual,
                    unit: if metric.ends_with("_s") { "s" } else { "ms" },
                    source: "baseline [thresholds]",
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key).then(a.what.cmp(&b.what)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::measure::fixtures::*;
    use crate::results::{Status, StepResult};

    fn step(name: &str, ms: f64) -> StepResult {
        StepResult {
            name: name.into(),
            line: 1,
            service: "s".into(),
            command: "true".into(),
            status: Status::Passed,
            exit_code: Some(0),
            duration_ms: ms,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            failures: vec![],
        }
    }

    #[test]
    fn metric_names_and_suggestions() {
        assert_eq!(check_metric("validation_ms"), Ok(()));
        assert_eq!(
            check_metric("validaton_ms"),
            Err(Some("validation_ms".into()))
        );
        assert_eq!(check_metric("zzz"), Err(None));
    }

    #[test]
    fn every_budget_source_is_checked() {
        let mut r = run(
            "t0",
            &[("a.toml", "fast", 100.0), ("a.toml", "slow", 900.0)],
        );
        r.tests[0].scenarios[0].steps = vec![step("boot", 80.0), step("query", 20.0)];
        r.tests[0].scenarios[1].duration_ms = 2500.0;
        r.phases.insert(Phase::Validate, 40.0);
        let mut perf = PerfSpec::default();
        perf.scenario_max_ms.insert("*".into(), 1000.0);
        perf.scenario_max_ms.insert("slow".into(), 800.0);
        perf.step_max_ms.insert("fast/boot".into(), 50.0);
        let mut budgets = Budgets::default();
        budgets.add_test("a.toml", &perf);
        let mut b = Baseline::default();
        b.keys.entry("a.toml#fast".into()).or_default().budget_ms = Some(99.0);
        b.thresholds.insert("validation_ms".into(), 30.0);
        b.thresholds.insert("scenario_execution_s".into(), 2.0);
        b.thresholds.insert("watch_reaction_ms".into(), 1.0); // not measured: no breach
        let got: Vec<String> = hard_budgets(&r, Some(&b), &budgets)
            .iter()
            .map(|x| x.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "a.toml#fast step `boot`: 80.0 ms > budget 50.0 ms (test file [perf])",
                "a.toml#fast step_ms: 100.0 ms > budget 99.0 ms (baseline budget_ms)",
                "a.toml#slow step_ms: 900.0 ms > budget 800.0 ms (test file [perf])",
                "metric:scenario_execution_s scenario_execution_s: 2.5 s > budget 2.0 s (baseline [thresholds])",
                "metric:validation_ms validation_ms: 40.0 ms > budget 30.0 ms (baseline [thresholds])",
            ]
        );
        assert!(hard_budgets(&r, None, &Budgets::default()).is_empty());
    }
}
