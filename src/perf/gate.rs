//! The gate verdict: screen a run against the baseline, then confirm flagged keys.
//!
//! Step 1 removes the common-mode runner speed (median ratio over scenarios), step 2 flags a
//! key whose normalised log ratio exceeds both the tolerance and a Student-t prediction bound
//! from its recorded between-run spread, step 3 (the caller re-runs the flagged scenarios)
//! requires the condition again, step 4 assigns verdicts. Pure functions of their inputs.

use std::collections::{BTreeMap, BTreeSet};

use crate::results::{PerfRow, PerfSummary, RunResults, SpeedVerdict, Verdict};

use super::baseline::{Baseline, KeyStats};
use super::budget::{hard_budgets, BudgetBreach, Budgets};
use super::fingerprint::fingerprint_hash;
use super::{measure, stats};

/// Fewer scenarios compared than this cannot separate the runner's speed from a regression:
/// the speed factor is their median, so one slow scenario in two moves it halfway, and alone
/// it is all of it.
pub const MIN_SEPARABLE: usize = 3;

/// Settings of the gate; `Default` holds the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GateConfig {
    /// Smallest slowdown that counts (fraction) for scenario keys.
    pub tolerance: f64,
    /// Tolerance for `phase:` keys: infrastructure and tool phases are noisier and a slow
    /// daemon must not read as a product regression.
    pub phase_tolerance: f64,
    /// Speed factor above `1 + speed_warn` warns, above `1 + speed_fail` fails.
    pub speed_warn: f64,
    pub speed_fail: f64,
    /// One-sided confidence of the prediction bound.
    pub confidence: f64,
    /// Keys with fewer history entries are advisory: they never fail the gate.
    pub min_history: usize,
    /// Keys whose minimum detectable effect exceeds this are `too-noisy`.
    pub max_mde: f64,
    /// Acknowledged regressions (`--ack`): a scenario key or a bare scenario name.
    pub acks: BTreeSet<String>,
    /// Tolerance per key (wins over the baseline file's and the test file's).
    pub per_key_tolerance: BTreeMap<String, f64>,
    /// Budgets and tolerances from the test files' `[perf]` (see [`Budgets::add_test`]).
    pub budgets: Budgets,
    /// Step times below this are marked low-resolution.
    pub low_resolution_ms: f64,
    /// Shown in the summary.
    pub baseline_path: String,
    /// Treat a flagged key that was not re-measured as regressed (for `clnrm gate` on saved
    /// results, where nothing can be re-run). Default false: it is a warning.
    pub unconfirmed_fails: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            tolerance: 0.10,
            phase_tolerance: 0.50,
            speed_warn: 0.20,
            speed_fail: 0.35,
            confidence: 0.99,
            min_history: 5,
            max_mde: 0.20,
            acks: BTreeSet::new(),
            per_key_tolerance: BTreeMap::new(),
            budgets: Budgets::default(),
            low_resolution_ms: measure::LOW_RESOLUTION_MS,
            baseline_path: ".clnrm/perf-baseline.toml".into(),
            unconfirmed_fails: false,
        }
    }
}

/// Screening state of one key before confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Flagged,
    Inconclusive,
    Improved,
    TooNoisy,
    Unchanged,
    New,
    Missing,
}

#[derive(Debug, Clone, PartialEq)]
struct Screened {
    key: String,
    current: Option<f64>,
    stats: Option<KeyStats>,
    tolerance: f64,
    bound: Option<f64>,
    state: State,
    budget_ms: Option<f64>,
    fingerprint_match: bool,
}

/// Result of steps 1 and 2: feed [`Screening::flagged`] re-measurements to [`confirm`].
#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    rows: Vec<Screened>,
    speed_factor: Option<f64>,
    breaches: Vec<BudgetBreach>,
    reference: BTreeMap<String, f64>,
    /// Scenario keys present in the run but not timed (failed, timed out, skipped).
    untimed: BTreeSet<String>,
    /// Whether the speed factor came from keys with a full history (else it is advisory).
    speed_mature: bool,
    /// Scenario keys timed in the run and in the baseline.
    compared: usize,
    /// How many of them the speed factor is the median over.
    speed_sample: usize,
}

impl Screening {
    /// Scenario keys to re-measure (phase keys cannot be re-run on their own).
    pub fn flagged(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.state == State::Flagged && !measure::is_phase(&r.key))
            .map(|r| r.key.clone())
            .collect()
    }

    /// Common-mode runner speed factor (current / baseline centre, median over scenarios).
    pub fn speed_factor(&self) -> Option<f64> {
        self.speed_factor
    }

    /// Hard budgets broken by the run (they fail without confirmation).
    pub fn breaches(&self) -> &[BudgetBreach] {
        &self.breaches
    }

    /// Log ratio of `value` against a key's centre, with the runner speed removed.
    fn normalised(&self, row: &Screened, value: f64) -> Option<f64> {
        let s = row.stats.as_ref()?;
        if value <= 0.0 || s.centre <= 0.0 {
            return None;
        }
        Some((value / s.centre).ln() - self.speed_factor.unwrap_or(1.0).ln())
    }
}

fn tolerance_for(key: &str, baseline: &Baseline, cfg: &GateConfig) -> f64 {
    if let Some(t) = cfg.per_key_tolerance.get(key) {
        return *t;
    }
    if let Some(t) = baseline.keys.get(key).and_then(|s| s.tolerance) {
        return t;
    }
    if measure::is_phase(key) {
        return cfg.phase_tolerance;
    }
    let (test, _) = measure::split_key(key);
    cfg.budgets
        .tolerance
        .get(&test)
        .copied()
        .unwrap_or(cfg.tolerance)
}

/// Steps 1 and 2: speed factor, hard budgets, and a screening state per key.
pub fn screen(results: &RunResults, baseline: &Baseline, cfg: &GateConfig) -> Screening {
    let current = measure::measurements(results);
    let tested = measure::tested_paths(results);
    let all_stats = baseline.key_stats();
    let fp = fingerprint_hash(&results.fingerprint);

    // Mature keys estimate the runner speed; young ones only if nothing else exists.
    let ratios = |min_n: usize| -> Vec<f64> {
        current
            .iter()
            .filter(|(k, _)| !measure::is_phase(k))
            .filter_map(|(k, v)| {
                let s = all_stats.get(k)?;
                (s.n >= min_n && s.centre > 0.0 && *v > 0.0).then(|| v / s.centre)
            })
            .collect()
    };
    let mature = ratios(cfg.min_history);
    let speed_mature = !mature.is_empty();
    let all_ratios = ratios(1);
    let speed_factor = stats::median(&mature).or_else(|| stats::median(&all_ratios));
    let ln_f = speed_factor.unwrap_or(1.0).ln();

    let mut keys: BTreeSet<&String> = current.keys().collect();
    for k in baseline.keys.keys() {
        let (test, _) = measure::split_key(k);
        // Only scenarios of tests in this run (or shard) can be missing; phases come and go
        // with the command (watch_reaction only in watch mode).
        if !measure::is_phase(k) && tested.contains(&test) {
            keys.insert(k);
        }
    }
    let mut bounds: BTreeMap<usize, Option<f64>> = BTreeMap::new();
    let rows = keys
        .into_iter()
        .map(|key| {
            let stats = all_stats.get(key).cloned();
            let cur = current.get(key).copied();
            let tolerance = tolerance_for(key, baseline, cfg);
            let bound = stats.as_ref().and_then(|s| {
                let t = *bounds
                    .entry(s.n)
                    .or_insert_with(|| stats::prediction_bound(1.0, s.n, cfg.confidence));
                t.map(|t| t * s.spread)
            });
            let state = match (&stats, cur) {
                (None, Some(_)) => State::New,
                // A budget-only key (no history) that did not run is missing too.
                (_, None) => State::Missing,
                (Some(s), Some(v)) if v <= 0.0 || s.centre <= 0.0 => State::Unchanged,
                (Some(s), Some(v)) => {
                    let r = (v / s.centre).ln() - ln_f;
                    let tol = (1.0 + tolerance).ln();
                    let mde = bound.map(stats::mde_fraction);
                    if r > tol && bound.is_some_and(|b| r > b) {
                        State::Flagged
                    } else if r < -tol && bound.is_some_and(|b| r < -b) {
                        State::Improved
                    } else if mde.is_some_and(|m| m > cfg.max_mde) {
                        State::TooNoisy
                    } else if r > tol {
                        State::Inconclusive
                    } else {
                        State::Unchanged
                    }
                }
            };
            let budget_ms = if measure::is_phase(key) {
                None
            } else {
                cfg.budgets.scenario_budget(key)
            }
            .or_else(|| baseline.keys.get(key).and_then(|s| s.budget_ms));
            Screened {
                key: key.clone(),
                current: cur,
                fingerprint_match: stats.as_ref().is_some_and(|s| s.fingerprints.contains(&fp)),
                stats,
                tolerance,
                bound,
                state,
                budget_ms,
            }
        })
        .collect();
    Screening {
        rows,
        speed_factor,
        breaches: hard_budgets(results, Some(baseline), &cfg.budgets),
        reference: baseline.baselines.clone(),
        speed_mature,
        compared: all_ratios.len(),
        speed_sample: if speed_mature {
            mature.len()
        } else {
            all_ratios.len()
        },
        untimed: results
            .tests
            .iter()
            .flat_map(|t| {
                t.scenarios
                    .iter()
                    .map(move |sc| measure::scenario_key(&t.path, &sc.name))
            })
            .filter(|k| !current.contains_key(k))
            .collect(),
    }
}

fn acked(key: &str, cfg: &GateConfig) -> bool {
    cfg.acks.contains(key) || cfg.acks.contains(&measure::split_key(key).1)
}

/// Steps 3 and 4: `remeasured` maps flagged keys to the step times of their re-runs.
pub fn confirm(
    screening: Screening,
    remeasured: &BTreeMap<String, Vec<f64>>,
    cfg: &GateConfig,
) -> PerfSummary {
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    let mut breaches: BTreeMap<&str, Vec<&BudgetBreach>> = BTreeMap::new();
    for b in &screening.breaches {
        breaches.entry(b.key.as_str()).or_default().push(b);
    }
    let remeasured_count = screening
        .flagged()
        .iter()
        .filter(|k| remeasured.get(*k).is_some_and(|v| !v.is_empty()))
        .count();
    for row in &screening.rows {
        let stats = row.stats.as_ref();
        let current = row.current.unwrap_or(0.0);
        let ratio = stats
            .filter(|s| s.centre > 0.0 && row.current.is_some())
            .map(|s| current / s.centre);
        let mut note = None;
        let mut verdict = match row.state {
            State::New => Verdict::New,
            State::Missing => {
                note = Some(if screening.untimed.contains(&row.key) {
                    "scenario failed or was skipped: not timed".into()
                } else {
                    "not in this run: renamed or removed? then delete its `[keys]` table from the baseline".into()
                });
                Verdict::Missing
            }
            State::Unchanged => Verdict::Unchanged,
            State::Inconclusive => Verdict::Inconclusive,
            State::Improved => {
                note = Some("faster than the baseline: consider `clnrm baseline update`".into());
                Verdict::Improved
            }
            State::TooNoisy => {
                let mde = row.bound.map(stats::mde_fraction).unwrap_or(f64::NAN);
                note = Some(format!(
                    "minimum detectable effect {:.0} %: record more runs (`clnrm baseline record --runs N`)",
                    mde * 100.0
                ));
                Verdict::TooNoisy
            }
            State::Flagged => {
                let again = remeasured.get(&row.key).and_then(|v| stats::median(v));
                match again.and_then(|m| screening.normalised(row, m).map(|r| (m, r))) {
                    Some((m, r)) => {
                        let holds =
                            r > (1.0 + row.tolerance).ln() && row.bound.is_some_and(|b| r > b);
                        let n = remeasured.get(&row.key).map_or(0, Vec::len);
                        if holds {
                            note = Some(format!("confirmed: median of {n} re-runs {m:.1} ms"));
                            Verdict::Regressed
                        } else {
                            note = Some(format!("not confirmed: median of {n} re-runs {m:.1} ms"));
                            Verdict::Warn
                        }
                    }
                    None if cfg.unconfirmed_fails && !measure::is_phase(&row.key) => {
                        note = Some("flagged; not re-measured".into());
                        Verdict::Regressed
                    }
                    None => {
                        note = Some("flagged; not re-measured".into());
                        Verdict::Warn
                    }
                }
            }
        };
        let n = stats.map_or(0, |s| s.n);
        if verdict == Verdict::Regressed && n < cfg.min_history {
            verdict = Verdict::Warn;
            note = Some(format!(
                "advisory: {n} history entries (< {}); {}",
                cfg.min_history,
                note.unwrap_or_default()
            ));
        }
        let mut budget_ms = row.budget_ms;
        if let Some(bs) = breaches.remove(row.key.as_str()) {
            verdict = Verdict::BudgetExceeded;
            budget_ms = Some(bs[0].limit);
            note = Some(
                bs.iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        if verdict.fails() && acked(&row.key, cfg) {
            verdict = Verdict::Acknowledged;
        }
        let (test, scenario) = measure::split_key(&row.key);
        rows.push(PerfRow {
            key: row.key.clone(),
            test,
            scenario,
            baseline_ms: stats.map(|s| s.centre),
            current_ms: current,
            ratio,
            normalised_ratio: ratio.map(|r| r / screening.speed_factor.unwrap_or(1.0)),
            mde: row.bound.map(stats::mde_fraction),
            verdict,
            fingerprint_match: row.fingerprint_match,
            low_resolution: !measure::is_phase(&row.key)
                && row.current.is_some()
                && current < cfg.low_resolution_ms,
            budget_ms,
            note,
            tolerance: (!measure::is_phase(&row.key) || row.stats.is_some())
                .then_some(row.tolerance),
        });
    }
    // Breaches of keys without a row: simple-form metrics.
    for (key, bs) in breaches {
        let metric = key.trim_start_matches("metric:");
        let verdict = if acked(key, cfg) || cfg.acks.contains(metric) {
            Verdict::Acknowledged
        } else {
            Verdict::BudgetExceeded
        };
        rows.push(PerfRow {
            key: key.to_string(),
            test: String::new(),
            scenario: metric.to_string(),
            baseline_ms: screening.reference.get(metric).copied(),
            current_ms: bs[0].actual,
            ratio: None,
            normalised_ratio: None,
            mde: None,
            verdict,
            fingerprint_match: false,
            low_resolution: false,
            budget_ms: Some(bs[0].limit),
            note: Some(
                bs.iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            tolerance: None,
        });
    }
    // Declaration order of `Verdict` is report order.
    rows.sort_by(|a, b| (a.verdict, &a.key).cmp(&(b.verdict, &b.key)));

    let speed_verdict = match screening.speed_factor {
        Some(f) if f > 1.0 + cfg.speed_fail && screening.speed_mature => SpeedVerdict::Fail,
        Some(f) if f > 1.0 + cfg.speed_warn => SpeedVerdict::Warn,
        _ => SpeedVerdict::Ok,
    };
    match screening.speed_factor {
        Some(f) => notes.push(format!(
            "runner speed factor {f:.3} ({speed_verdict}; warn above {:.2}, fail above {:.2})",
            1.0 + cfg.speed_warn,
            1.0 + cfg.speed_fail
        )),
        None => notes.push("no scenario with a baseline: runner speed not estimated".into()),
    }
    let compared: Vec<&Screened> = screening
        .rows
        .iter()
        .filter(|r| r.stats.is_some())
        .collect();
    if !compared.is_empty() && compared.iter().all(|r| !r.fingerprint_match) {
        notes.push(
            "this runner's fingerprint is not in the baseline history: the speed factor may reflect different hardware".into(),
        );
    }
    match (screening.compared, screening.speed_sample) {
        (0, _) => notes.push(format!(
            "nothing compared: no scenario of this run has a timing in `{}`",
            cfg.baseline_path
        )),
        (_, n) if n < MIN_SEPARABLE => notes.push(format!(
            "the runner's speed rests on {n} scenario{}: too few to tell a slower runner from a regression (their common slowdown counts as runner speed)",
            if n == 1 { "" } else { "s" }
        )),
        _ => {}
    }
    if remeasured_count > 0 {
        notes.push(format!(
            "{remeasured_count} flagged scenario{} re-measured",
            if remeasured_count == 1 { "" } else { "s" }
        ));
    }
    let failed = speed_verdict == SpeedVerdict::Fail || rows.iter().any(|r| r.verdict.fails());
    PerfSummary {
        baseline_path: cfg.baseline_path.clone(),
        speed_factor: screening.speed_factor,
        speed_verdict,
        failed,
        rows,
        notes,
        compared: screening.compared,
        speed_sample: screening.speed_sample,
        speed_warn_above: Some(1.0 + cfg.speed_warn),
        speed_fail_above: Some(1.0 + cfg.speed_fail),
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
