//! Monte Carlo simulation of the gate on noisy shared runners: the proof behind its defaults.
//!
//! Each simulated PR records a baseline of `history` runs on random runners, then measures a
//! PR run on another random runner with one scenario slowed down, screens it, re-measures the
//! flagged scenarios `remeasure` times on the same runner and confirms. It drives the real
//! `Baseline`, [`screen`] and [`confirm`], so the figures describe the shipped gate.
//! `cargo run --example gate_sim` prints the table.
//!
//! Result of `cargo run --example gate_sim 2000 42` (debug build, about 4 CPU-minutes):
//!
//! 30 scenarios, history 20, runner noise 10 % (lognormal), outliers 2 % x1.5, 3 re-measurements of flagged scenarios, seed 42
//!
//! | scenario noise s | slowdown | PRs | false alarm / PR (of which speed factor) | detected (confirmed) | flagged at screening | naive gate false alarm / PR | naive detected |
//! |---:|---:|---:|---:|---:|---:|---:|---:|
//! | 2 % | +0 % | 2000 | 0.30 % (0.20 %) | n/a | n/a | 65.0 % | n/a |
//! | 2 % | +10 % | 2000 | 0.20 % (0.15 %) | 25.6 % | 48.0 % | 68.2 % | 52.1 % |
//! | 2 % | +15 % | 2000 | 0.30 % (0.25 %) | 97.5 % | 98.0 % | 64.8 % | 61.2 % |
//! | 2 % | +20 % | 2000 | 0.30 % (0.20 %) | 100.0 % | 100.0 % | 67.3 % | 70.8 % |
//! | 2 % | +50 % | 2000 | 0.20 % (0.15 %) | 100.0 % | 100.0 % | 63.6 % | 96.4 % |
//! | 3 % | +0 % | 2000 | 0.30 % (0.20 %) | n/a | n/a | 70.5 % | n/a |
//! | 3 % | +10 % | 2000 | 0.25 % (0.10 %) | 22.9 % | 43.4 % | 69.5 % | 47.9 % |
//! | 3 % | +15 % | 2000 | 0.20 % (0.15 %) | 84.0 % | 87.9 % | 70.3 % | 62.0 % |
//! | 3 % | +20 % | 2000 | 0.35 % (0.25 %) | 99.4 % | 99.5 % | 67.5 % | 70.7 % |
//! | 3 % | +50 % | 2000 | 0.20 % (0.15 %) | 100.0 % | 100.0 % | 67.2 % | 96.1 % |
//! | 5 % | +0 % | 2000 | 1.05 % (0.20 %) | n/a | n/a | 79.5 % | n/a |
//! | 5 % | +10 % | 2000 | 0.80 % (0.25 %) | 9.3 % | 27.5 % | 78.5 % | 52.6 % |
//! | 5 % | +15 % | 2000 | 0.70 % (0.10 %) | 35.1 % | 52.9 % | 78.0 % | 60.2 % |
//! | 5 % | +20 % | 2000 | 0.90 % (0.20 %) | 69.3 % | 78.0 % | 76.8 % | 69.2 % |
//! | 5 % | +50 % | 2000 | 0.80 % (0.30 %) | 100.0 % | 100.0 % | 77.0 % | 96.3 % |
//!
//! The naive gate is "current vs previous single run, +10 %" in the same simulation.

use std::collections::BTreeMap;

use crate::results::{
    BackendKind, Backends, Fingerprint, RunResults, ScenarioResult, SpeedVerdict, Status,
    TestResult, Verdict,
};

use super::baseline::Baseline;
use super::gate::{confirm, screen, GateConfig};

/// SplitMix64: tiny, fast, good enough for simulation; seeded, so results are reproducible.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    spare_normal: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            spare_normal: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1): never 0, so `ln` is safe.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// Parameters of one simulation cell.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub scenarios: usize,
    pub history: usize,
    /// Runner-to-runner common-mode noise (sigma of the log speed).
    pub runner_noise: f64,
    /// Per-scenario between-run noise (sigma of the log time).
    pub scenario_noise: f64,
    /// Probability that one measurement is an outlier, and its factor.
    pub outlier_prob: f64,
    pub outlier_factor: f64,
    /// Slowdown injected into one scenario of the PR run (0.2 = +20 %).
    pub slowdown: f64,
    /// Re-measurements of each flagged scenario.
    pub remeasure: usize,
    pub prs: usize,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            scenarios: 30,
            history: 20,
            runner_noise: 0.10,
            scenario_noise: 0.03,
            outlier_prob: 0.02,
            outlier_factor: 1.5,
            slowdown: 0.0,
            remeasure: 3,
            prs: 2000,
            seed: 42,
        }
    }
}

/// Outcome counts of one cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellResult {
    pub prs: usize,
    /// PRs where the gate failed for anything but the injected scenario.
    pub false_alarms: usize,
    /// Of `false_alarms`: PRs failed by the runner speed factor alone (+35 %).
    pub speed_fails: usize,
    /// PRs where the injected scenario's verdict was `regressed`.
    pub detected: usize,
    /// PRs where the injected scenario was flagged at screening (before confirmation).
    pub screened: usize,
    /// PRs where the naive gate (current vs previous single run, +10 %) fired on a scenario
    /// other than the injected one.
    pub naive_false_alarms: usize,
    /// PRs where the naive gate fired on the injected scenario.
    pub naive_detected: usize,
}

/// A `RunResults` holding the given (test path, scenario, step ms), one test per path.
pub fn build_results(
    at: &str,
    fp: &Fingerprint,
    scenarios: impl IntoIterator<Item = (String, String, f64)>,
) -> RunResults {
    let mut tests: BTreeMap<String, Vec<ScenarioResult>> = BTreeMap::new();
    for (path, name, ms) in scenarios {
        tests.entry(path).or_default().push(ScenarioResult {
            duration_ms: ms,
            step_ms: ms,
            ..ScenarioResult::new(name, 1, Status::Passed)
        });
    }
    RunResults {
        schema_version: crate::results::SCHEMA_VERSION,
        clnrm_version: env!("CARGO_PKG_VERSION").into(),
        run_id: at.into(),
        started_at: at.into(),
        duration_ms: 0.0,
        backend: Backends::one(BackendKind::Fake),
        fingerprint: fp.clone(),
        suite_id: "sim".into(),
        shard: None,
        phases: BTreeMap::new(),
        load_errors: vec![],
        tests: tests
            .into_iter()
            .map(|(path, scenarios)| TestResult {
                name: path.clone(),
                path,
                tags: vec![],
                status: Status::Passed,
                duration_ms: 0.0,
                scenarios,
            })
            .collect(),
        perf: None,
        aborted: None,
        empty_shard: false,
        missing_shards: Vec::new(),
    }
}

struct World<'a> {
    cfg: &'a SimConfig,
    rng: Rng,
    /// True time of each scenario, ms.
    base: Vec<f64>,
    fp: Fingerprint,
}

impl World<'_> {
    fn measure(&mut self, k: usize, runner: f64, slowdown: f64) -> f64 {
        let mut v = self.base[k] * runner * (self.cfg.scenario_noise * self.rng.normal()).exp();
        if self.rng.uniform() < self.cfg.outlier_prob {
            v *= self.cfg.outlier_factor;
        }
        v * (1.0 + slowdown)
    }

    fn runner(&mut self) -> f64 {
        (self.cfg.runner_noise * self.rng.normal()).exp()
    }

    fn run(&mut self, at: &str, values: &[f64]) -> RunResults {
        build_results(
            at,
            &self.fp,
            values
                .iter()
                .enumerate()
                .map(|(k, v)| (key_path(k), "s".to_string(), *v)),
        )
    }
}

fn key_path(k: usize) -> String {
    format!("suite/t{k:02}.clnrm.toml")
}

/// Simulate `cfg.prs` pull requests with the gate configured by `gate`.
pub fn simulate(cfg: &SimConfig, gate: &GateConfig) -> CellResult {
    let mut out = CellResult {
        prs: cfg.prs,
        ..CellResult::default()
    };
    let mut w = World {
        cfg,
        rng: Rng::new(cfg.seed),
        base: vec![],
        fp: Fingerprint {
            cpu_model: "sim".into(),
            cores: 2,
            kernel: "Linux".into(),
            docker_version: None,
        },
    };
    for _ in 0..cfg.prs {
        // Scenario times log-uniform between 200 ms and 5 s.
        w.base = (0..cfg.scenarios)
            .map(|_| (200f64.ln() + w.rng.uniform() * (5000f64 / 200.0).ln()).exp())
            .collect();
        let mut baseline = Baseline::default();
        let mut previous = vec![];
        for j in 0..cfg.history {
            let r = w.runner();
            previous = (0..cfg.scenarios).map(|k| w.measure(k, r, 0.0)).collect();
            baseline.append_run(&w.run(&format!("h{j:03}"), &previous), &w.fp.clone());
        }
        let injected = (w.rng.next_u64() % cfg.scenarios as u64) as usize;
        let slow = |k: usize| if k == injected { cfg.slowdown } else { 0.0 };
        let r = w.runner();
        let now: Vec<f64> = (0..cfg.scenarios)
            .map(|k| w.measure(k, r, slow(k)))
            .collect();
        let results = w.run("pr", &now);
        let screening = screen(&results, &baseline, gate);
        let injected_key = format!("{}#s", key_path(injected));
        let mut again = BTreeMap::new();
        for key in screening.flagged() {
            let k: usize = key[7..9].parse().expect("sim keys are suite/tNN");
            let v: Vec<f64> = (0..cfg.remeasure)
                .map(|_| w.measure(k, r, slow(k)))
                .collect();
            again.insert(key, v);
        }
        if again.contains_key(&injected_key) {
            out.screened += 1;
        }
        let summary = confirm(screening, &again, gate);
        let other_failed = summary.speed_verdict == SpeedVerdict::Fail
            || summary
                .rows
                .iter()
                .any(|row| row.key != injected_key && row.verdict.fails());
        out.false_alarms += usize::from(other_failed);
        out.speed_fails += usize::from(summary.speed_verdict == SpeedVerdict::Fail);
        out.detected += usize::from(
            summary
                .rows
                .iter()
                .any(|row| row.key == injected_key && row.verdict == Verdict::Regressed),
        );
        let naive = |k: usize| now[k] / previous[k] > 1.10;
        out.naive_false_alarms +=
            usize::from((0..cfg.scenarios).any(|k| k != injected && naive(k)));
        out.naive_detected += usize::from(naive(injected));
    }
    out
}

/// The markdown table of a grid of cells: rows (noise, slowdown).
pub fn markdown_table(cells: &[(SimConfig, CellResult)]) -> String {
    let pct = |n: usize, d: usize| 100.0 * n as f64 / d.max(1) as f64;
    let mut s = String::from(
        "| scenario noise s | slowdown | PRs | false alarm / PR (of which speed factor) | detected (confirmed) | flagged at screening | naive gate false alarm / PR | naive detected |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (c, r) in cells {
        let det = |n: usize| {
            if c.slowdown == 0.0 {
                "n/a".to_string()
            } else {
                format!("{:.1} %", pct(n, r.prs))
            }
        };
        s.push_str(&format!(
            "| {:.0} % | +{:.0} % | {} | {:.2} % ({:.2} %) | {} | {} | {:.1} % | {} |\n",
            c.scenario_noise * 100.0,
            c.slowdown * 100.0,
            r.prs,
            pct(r.false_alarms, r.prs),
            pct(r.speed_fails, r.prs),
            det(r.detected),
            det(r.screened),
            pct(r.naive_false_alarms, r.prs),
            det(r.naive_detected),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_normal_has_unit_moments() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| a.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
        assert!((0..1000).map(|_| a.uniform()).all(|u| u > 0.0 && u < 1.0));
    }

    /// A small grid, enough to catch a gate that cries wolf or goes blind; the full table
    /// is the example's job.
    #[test]
    fn gate_is_quiet_on_unchanged_prs_and_catches_a_big_slowdown() {
        let gate = GateConfig::default();
        let quiet = simulate(
            &SimConfig {
                prs: 150,
                ..SimConfig::default()
            },
            &gate,
        );
        assert!(quiet.false_alarms <= 3, "{quiet:?}");
        assert_eq!(quiet.detected, 0);
        // The naive gate fires on most unchanged PRs.
        assert!(quiet.naive_false_alarms > 60, "{quiet:?}");
        let slow = simulate(
            &SimConfig {
                prs: 150,
                slowdown: 0.5,
                seed: 9,
                ..SimConfig::default()
            },
            &gate,
        );
        assert_eq!(slow.detected, 150, "{slow:?}");
    }
}
