//! The baseline file (`.clnrm/perf-baseline.toml`): rolling history per key, budgets, anchor.
//!
//! The file is written by hand (not by a serializer) so that it stays diff-friendly: stable
//! key order, one history entry per line, newest last. It is parsed with serde and
//! `deny_unknown_fields`, so a typo in a hand edit is an error with file:line:col.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::results::{Fingerprint, RunResults};
use crate::suite::Location;

use super::error::PerfError;
use super::fingerprint::{fingerprint_hash, fingerprint_label};
use super::{budget, measure, stats};

/// Version of the baseline file format.
pub const FORMAT_VERSION: u32 = 1;
/// Default rolling window (history entries kept per key).
pub const DEFAULT_WINDOW: usize = 20;
/// Run groups with fewer other scenario keys than this are not normalised for runner speed:
/// a median of one or two ratios would absorb the key's own variation.
const MIN_KEYS_FOR_RUN_FACTOR: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub clnrm_version: String,
    /// History entries kept per key; the oldest are trimmed first.
    pub window: usize,
    pub anchor: Option<Anchor>,
    /// Short fingerprint hash -> description.
    pub fingerprints: BTreeMap<String, String>,
    /// Simple form `[baselines] metric = value` (reference values, reported next to budgets).
    pub baselines: BTreeMap<String, f64>,
    /// Simple form `[thresholds] metric = value` (hard budgets).
    pub thresholds: BTreeMap<String, f64>,
    /// Per key (`path#scenario`, `phase:name`): history, budget, tolerance.
    pub keys: BTreeMap<String, Series>,
    /// Trace snapshot per scenario key (`path#scenario`): an OTLP JSON lines file, relative to
    /// the baseline's folder (`clnrm baseline record --traces`).
    pub traces: BTreeMap<String, String>,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline {
            clnrm_version: env!("CARGO_PKG_VERSION").to_string(),
            window: DEFAULT_WINDOW,
            anchor: None,
            fingerprints: BTreeMap::new(),
            baselines: BTreeMap::new(),
            thresholds: BTreeMap::new(),
            keys: BTreeMap::new(),
            traces: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    #[serde(default)]
    pub budget_ms: Option<f64>,
    /// Gate tolerance override for this key (fraction).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Oldest first.
    #[serde(default)]
    pub history: Vec<Entry>,
}

/// One recorded run median.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub ms: f64,
    /// Short fingerprint hash (see `[fingerprints]`).
    pub fp: String,
    /// RFC 3339 start of the run; entries of one run share it, which is how the runner speed
    /// of past runs is removed from the spread.
    pub at: String,
}

/// A reference point (e.g. the last release) that drift is reported against. The centres
/// are snapshotted because the rolling window drops the entries they came from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub label: String,
    pub at: String,
    #[serde(default)]
    pub centres: BTreeMap<String, f64>,
}

/// What the gate derives from one key's history.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStats {
    /// Median of the history after removing each past run's speed factor, ms.
    pub centre: f64,
    /// Between-run spread of log values (MAD × 1.4826, floored at 1 %).
    pub spread: f64,
    /// History entries.
    pub n: usize,
    /// Fingerprint hashes seen in the history.
    pub fingerprints: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    version: u32,
    #[serde(default)]
    clnrm_version: String,
    #[serde(default = "default_window")]
    window: usize,
    #[serde(default)]
    anchor: Option<Anchor>,
    #[serde(default)]
    fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    baselines: BTreeMap<String, f64>,
    #[serde(default)]
    thresholds: BTreeMap<String, f64>,
    #[serde(default)]
    keys: BTreeMap<String, Series>,
    #[serde(default)]
    traces: BTreeMap<String, String>,
}

fn default_window() -> usize {
    DEFAULT_WINDOW
}

impl Baseline {
    /// Read a baseline; `Ok(None)` when the file does not exist. A file with nothing in it
    /// (empty, or only comments) is an empty baseline: a placeholder committed before the
    /// first recording, which the gate reports as having nothing to compare.
    pub fn load(path: &Path) -> Result<Option<Baseline>, PerfError> {
        match std::fs::read_to_string(path) {
            Ok(text) if toml::from_str::<toml::Table>(&text).is_ok_and(|t| t.is_empty()) => {
                Ok(Some(Baseline::default()))
            }
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PerfError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parse baseline text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline, PerfError> {
        let raw: RawBaseline = toml::from_str(text).map_err(|e| PerfError::Parse {
            location: match e.span() {
                Some(span) => Location::at_offset(path, text, span.start),
                None => Location::new(path, None, None),
            },
            message: e.message().to_string(),
        })?;
        if raw.version != FORMAT_VERSION {
            return Err(PerfError::Version {
                path: path.to_path_buf(),
                found: raw.version,
                supported: FORMAT_VERSION,
            });
        }
        for (table, map) in [
            ("baselines", &raw.baselines),
            ("thresholds", &raw.thresholds),
        ] {
            for metric in map.keys() {
                budget::check_metric(metric).map_err(|suggestion| PerfError::UnknownMetric {
                    path: path.to_path_buf(),
                    table,
                    metric: metric.clone(),
                    suggestion,
                })?;
            }
        }
        Ok(Baseline {
            clnrm_version: raw.clnrm_version,
            window: raw.window.max(1),
            anchor: raw.anchor,
            fingerprints: raw.fingerprints,
            baselines: raw.baselines,
            thresholds: raw.thresholds,
            keys: raw.keys,
            traces: raw.traces,
        })
    }

    /// Write the file so that a crash leaves either the old or the new content: temp file in
    /// the same directory, fsync, rename over the target, fsync the directory.
    pub fn save_atomic(&self, path: &Path) -> Result<(), PerfError> {
        crate::atomic::write_atomic(path, self.to_toml().as_bytes()).map_err(|e| PerfError::Io {
            action: e.action,
            path: e.path,
            source: e.source,
        })
    }

    /// Append one entry per measured key of `results` (its run medians), trimming the window.
    pub fn append_run(&mut self, results: &RunResults, fingerprint: &Fingerprint) {
        let fp = fingerprint_hash(fingerprint);
        self.fingerprints
            .insert(fp.clone(), fingerprint_label(fingerprint));
        if !results.clnrm_version.is_empty() {
            self.clnrm_version = results.clnrm_version.clone();
        }
        for (key, ms) in measure::measurements(results) {
            let series = self.keys.entry(key).or_default();
            series.history.push(Entry {
                // Microseconds are far below any timer jitter here; more digits only make
                // the committed file noisy to read and diff.
                ms: (ms * 1000.0).round() / 1000.0,
                fp: fp.clone(),
                at: results.started_at.clone(),
            });
            let excess = series.history.len().saturating_sub(self.window);
            series.history.drain(..excess);
        }
        self.prune_fingerprints();
    }

    /// `baseline record --runs N`: each run becomes one history entry per key.
    pub fn record_runs(&mut self, runs: &[RunResults]) {
        for run in runs {
            self.append_run(run, &run.fingerprint);
        }
    }

    /// Mark the current centres as the drift anchor (e.g. `label = "v0.1.0"`).
    pub fn set_anchor(&mut self, label: &str, at: &str) {
        let centres = self
            .key_stats()
            .into_iter()
            .map(|(k, s)| (k, s.centre))
            .collect();
        self.anchor = Some(Anchor {
            label: label.to_string(),
            at: at.to_string(),
            centres,
        });
    }

    /// Drop fingerprint descriptions no history entry refers to any more.
    fn prune_fingerprints(&mut self) {
        let used: BTreeSet<&str> = self
            .keys
            .values()
            .flat_map(|s| s.history.iter().map(|e| e.fp.as_str()))
            .collect();
        self.fingerprints.retain(|k, _| used.contains(k.as_str()));
    }

    /// Speed factor of every past run (keyed by `at`) per key, leaving that key out: the
    /// median over the run's other scenario keys of value / raw median of that key.
    fn run_factors(&self) -> BTreeMap<(&str, &str), f64> {
        let raw_median: BTreeMap<&str, f64> = self
            .keys
            .iter()
            .filter_map(|(k, s)| {
                let v: Vec<f64> = s
                    .history
                    .iter()
                    .map(|e| e.ms)
                    .filter(|m| *m > 0.0)
                    .collect();
                stats::median(&v)
                    .filter(|m| *m > 0.0)
                    .map(|m| (k.as_str(), m))
            })
            .collect();
        // run `at` -> [(key, ratio to that key's median)] over scenario keys only
        let mut runs: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
        for (k, s) in &self.keys {
            if measure::is_phase(k) {
                continue;
            }
            let Some(m) = raw_median.get(k.as_str()) else {
                continue;
            };
            for e in s.history.iter().filter(|e| e.ms > 0.0) {
                runs.entry(e.at.as_str()).or_default().push((k, e.ms / m));
            }
        }
        let mut out = BTreeMap::new();
        for (k, s) in &self.keys {
            for e in &s.history {
                let others: Vec<f64> = runs
                    .get(e.at.as_str())
                    .map(|v| v.iter().filter(|(o, _)| o != k).map(|(_, r)| *r).collect())
                    .unwrap_or_default();
                let f = if others.len() >= MIN_KEYS_FOR_RUN_FACTOR {
                    stats::median(&others).unwrap_or(1.0)
                } else {
                    1.0
                };
                out.insert((k.as_str(), e.at.as_str()), f);
            }
        }
        out
    }

    /// Centre and spread of every key with a usable history.
    pub fn key_stats(&self) -> BTreeMap<String, KeyStats> {
        let factors = self.run_factors();
        let mut out = BTreeMap::new();
        for (k, s) in &self.keys {
            let logs: Vec<f64> = s
                .history
                .iter()
                .filter(|e| e.ms > 0.0 && e.ms.is_finite())
                .map(|e| {
                    e.ms.ln()
                        - factors
                            .get(&(k.as_str(), e.at.as_str()))
                            .unwrap_or(&1.0)
                            .ln()
                })
                .collect();
            let Some(centre) = stats::median(&logs) else {
                continue;
            };
            out.insert(
                k.clone(),
                KeyStats {
                    centre: centre.exp(),
                    spread: stats::robust_spread(&logs),
                    n: logs.len(),
                    fingerprints: s.history.iter().map(|e| e.fp.clone()).collect(),
                },
            );
        }
        out
    }

    /// The file text: stable order, one history entry per line.
    pub fn to_toml(&self) -> String {
        let mut o = String::new();
        o.push_str(
            "# clnrm perf baseline: rolling history of run medians per scenario and phase.\n",
        );
        o.push_str("# Written by `clnrm baseline record|update`; budgets, tolerances and the anchor may be edited.\n");
        o.push_str(&format!("version = {FORMAT_VERSION}\n"));
        o.push_str(&format!("clnrm_version = {}\n", quote(&self.clnrm_version)));
        o.push_str(&format!("window = {}\n", self.window));
        if let Some(a) = &self.anchor {
            o.push_str("\n[anchor]\n");
            o.push_str(&format!("label = {}\n", quote(&a.label)));
            o.push_str(&format!("at = {}\n", quote(&a.at)));
            if !a.centres.is_empty() {
                o.push_str("\n[anchor.centres]\n");
                for (k, v) in &a.centres {
                    o.push_str(&format!("{} = {}\n", key(k), float(*v)));
                }
            }
        }
        for (name, map) in [
            ("fingerprints", None),
            ("baselines", Some(&self.baselines)),
            ("thresholds", Some(&self.thresholds)),
        ] {
            match map {
                None if !self.fingerprints.is_empty() => {
                    o.push_str(&format!("\n[{name}]\n"));
                    for (k, v) in &self.fingerprints {
                        o.push_str(&format!("{} = {}\n", key(k), quote(v)));
                    }
                }
                Some(m) if !m.is_empty() => {
                    o.push_str(&format!("\n[{name}]\n"));
                    for (k, v) in m {
                        o.push_str(&format!("{} = {}\n", key(k), float(*v)));
                    }
                }
                _ => {}
            }
        }
        if !self.traces.is_empty() {
            o.push_str("\n# Trace snapshots (`clnrm baseline record --traces`), relative to this file.\n[traces]\n");
            for (k, v) in &self.traces {
                o.push_str(&format!("{} = {}\n", key(k), quote(v)));
            }
        }
        for (k, s) in &self.keys {
            o.push_str(&format!("\n[keys.{}]\n", key(k)));
            if let Some(b) = s.budget_ms {
                o.push_str(&format!("budget_ms = {}\n", float(b)));
            }
            if let Some(t) = s.tolerance {
                o.push_str(&format!("tolerance = {}\n", float(t)));
            }
            o.push_str("history = [\n");
            for e in &s.history {
                o.push_str(&format!(
                    "  {{ ms = {}, fp = {}, at = {} }},\n",
                    float(e.ms),
                    quote(&e.fp),
                    quote(&e.at)
                ));
            }
            o.push_str("]\n");
        }
        o
    }
}

/// 1-based line and column of a byte offset.
/// A single-line TOML basic string (the toml crate would pick a multi-line form for text
/// with newlines, which is not allowed for keys and breaks one-entry-per-line).
fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        quote(k)
    }
}

/// A TOML float literal; non-finite values cannot come from a run and are written as 0.
fn float(x: f64) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    toml::Value::Float(x).to_string()
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
