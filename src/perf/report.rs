//! Human views of baseline files: `baseline show`, `baseline diff`, and drift to an anchor.
//!
//! Markdown tables (they read fine in a terminal and paste into a job summary); rows sorted
//! by key so the output is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use super::baseline::{Baseline, KeyStats};
use super::error::PerfError;
use super::{measure, stats};

/// Default tolerances used to mark movement (same defaults as the gate).
const SCENARIO_TOLERANCE: f64 = 0.10;
const PHASE_TOLERANCE: f64 = 0.50;
/// Confidence of the minimum detectable effect shown by `show`.
const CONFIDENCE: f64 = 0.99;

fn tolerance(baseline: &Baseline, key: &str) -> f64 {
    baseline
        .keys
        .get(key)
        .and_then(|s| s.tolerance)
        .unwrap_or(if measure::is_phase(key) {
            PHASE_TOLERANCE
        } else {
            SCENARIO_TOLERANCE
        })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// Markdown table cell: pipes and newlines in keys must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn arrow(change: f64, tol: f64) -> &'static str {
    if change > tol {
        "↑ slower"
    } else if change < -tol {
        "↓ faster"
    } else {
        "≈"
    }
}

/// `clnrm baseline show`: every key with its centre, spread, MDE, budget and history size.
pub fn show(baseline: &Baseline) -> String {
    let stats = baseline.key_stats();
    let mut o = format!(
        "baseline format 1, clnrm {}, window {}, {}\n",
        baseline.clnrm_version,
        baseline.window,
        crate::report::count_of(baseline.keys.len(), "key")
    );
    if let Some(a) = &baseline.anchor {
        o.push_str(&format!("anchor: {} at {}\n", a.label, a.at));
    }
    o.push_str("\n| key | n | centre ms | spread | MDE | tolerance | budget ms | runners |\n");
    o.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
    for (key, series) in &baseline.keys {
        let s: Option<&KeyStats> = stats.get(key);
        let mde = s.and_then(|s| stats::prediction_bound(s.spread, s.n, CONFIDENCE));
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} % | {} | {} |\n",
            cell(key),
            series.history.len(),
            opt(s.map(|s| s.centre), 1),
            s.map_or_else(|| "-".into(), |s| format!("{:.1} %", s.spread * 100.0)),
            mde.map_or_else(
                || "-".to_string(),
                |b| format!("{:.1} %", stats::mde_fraction(b) * 100.0)
            ),
            tolerance(baseline, key) * 100.0,
            opt(series.budget_ms, 1),
            s.map(|s| s.fingerprints.iter().cloned().collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        ));
    }
    if !baseline.baselines.is_empty() || !baseline.thresholds.is_empty() {
        o.push_str("\n| metric | baseline | threshold |\n|---|---:|---:|\n");
        let names: BTreeSet<&String> = baseline
            .baselines
            .keys()
            .chain(baseline.thresholds.keys())
            .collect();
        for m in names {
            o.push_str(&format!(
                "| {m} | {} | {} |\n",
                opt(baseline.baselines.get(m).copied(), 1),
                opt(baseline.thresholds.get(m).copied(), 1)
            ));
        }
    }
    if !baseline.fingerprints.is_empty() {
        o.push_str("\nrunners:\n");
        for (h, d) in &baseline.fingerprints {
            o.push_str(&format!("  {h}  {d}\n"));
        }
    }
    o
}

/// `clnrm baseline diff OLD NEW`: what moved between two baseline files.
pub fn diff(old: &Baseline, new: &Baseline) -> String {
    let (a, b) = (old.key_stats(), new.key_stats());
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut moved = 0;
    let mut o = String::from("| key | old ms | new ms | change | n old → new | |\n");
    o.push_str("|---|---:|---:|---:|---:|---|\n");
    for key in keys {
        let (x, y) = (a.get(key), b.get(key));
        let change = match (x, y) {
            (Some(x), Some(y)) if x.centre > 0.0 => Some(y.centre / x.centre - 1.0),
            _ => None,
        };
        let mark = match (x, y, change) {
            (None, Some(_), _) => "added",
            (Some(_), None, _) => "removed",
            (_, _, Some(c)) => arrow(c, tolerance(new, key)),
            _ => "",
        };
        if mark != "≈" {
            moved += 1;
        }
        o.push_str(&format!(
            "| {} | {} | {} | {} | {} → {} | {mark} |\n",
            cell(key),
            opt(x.map(|s| s.centre), 1),
            opt(y.map(|s| s.centre), 1),
            change.map_or_else(|| "-".into(), |c| format!("{:+.1} %", c * 100.0)),
            x.map_or(0, |s| s.n),
            y.map_or(0, |s| s.n),
        ));
    }
    for (name, m_old, m_new) in [
        ("thresholds", &old.thresholds, &new.thresholds),
        ("budgets", &budgets(old), &budgets(new)),
    ] {
        if m_old != m_new {
            o.push_str(&format!("\n{name} changed: {m_old:?} → {m_new:?}\n"));
        }
    }
    format!("{moved} key(s) moved beyond their tolerance, were added or removed\n\n{o}")
}

fn budgets(b: &Baseline) -> BTreeMap<String, f64> {
    b.keys
        .iter()
        .filter_map(|(k, s)| s.budget_ms.map(|v| (k.clone(), v)))
        .collect()
}

/// Drift of every key's centre since the anchor. `anchor` names the stored anchor's label
/// (`None`: the stored anchor, whatever its label).
pub fn drift(baseline: &Baseline, anchor: Option<&str>) -> Result<String, PerfError> {
    let a = match (&baseline.anchor, anchor) {
        (Some(a), None) => a,
        (Some(a), Some(l)) if a.label == l => a,
        (_, l) => return Err(PerfError::UnknownAnchor(l.unwrap_or("(none)").to_string())),
    };
    let now = baseline.key_stats();
    let changes: BTreeMap<&String, f64> = a
        .centres
        .iter()
        .filter_map(|(k, c)| {
            let n = now.get(k)?;
            (*c > 0.0).then(|| (k, n.centre / c - 1.0))
        })
        .collect();
    // Common-mode drift (e.g. a new runner fleet) is shown apart from per-key creep.
    let scenario_changes: Vec<f64> = changes
        .iter()
        .filter(|(k, _)| !measure::is_phase(k))
        .map(|(_, c)| (1.0 + c).ln())
        .collect();
    let common = stats::median(&scenario_changes).map_or(0.0, f64::exp_m1);
    let mut crept = 0;
    let mut rows = String::from("| key | anchor ms | now ms | drift | drift beyond common | |\n");
    rows.push_str("|---|---:|---:|---:|---:|---|\n");
    for (k, c) in &changes {
        let own = (1.0 + *c) / (1.0 + common) - 1.0;
        let mark = arrow(own, tolerance(baseline, k));
        if mark.starts_with('↑') {
            crept += 1;
        }
        rows.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:+.1} % | {:+.1} % | {mark} |\n",
            cell(k),
            a.centres[*k],
            now[*k].centre,
            c * 100.0,
            own * 100.0
        ));
    }
    let gone: Vec<&String> = a.centres.keys().filter(|k| !now.contains_key(*k)).collect();
    let mut o = format!(
        "drift since anchor `{}` ({}): common-mode {:+.1} %, {crept} key(s) slower beyond their tolerance\n\n{rows}",
        a.label,
        a.at,
        common * 100.0
    );
    if !gone.is_empty() {
        o.push_str(&format!(
            "\nno longer in the baseline: {}\n",
            gone.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::baseline::Entry;

    fn baseline(values: &[(&str, &[f64])]) -> Baseline {
        let mut b = Baseline::default();
        for (k, vs) in values {
            let s = b.keys.entry(k.to_string()).or_default();
            for (i, v) in vs.iter().enumerate() {
                s.history.push(Entry {
                    ms: *v,
                    fp: "abcd0123".into(),
                    at: format!("r{i}"),
                });
            }
        }
        b
    }

    #[test]
    fn show_lists_keys_with_centre_and_budget() {
        let mut b = baseline(&[
            ("t.toml#a", &[100.0, 102.0, 98.0]),
            ("phase:validate", &[5.0]),
        ]);
        b.keys.get_mut("t.toml#a").expect("added").budget_ms = Some(500.0);
        b.thresholds.insert("validation_ms".into(), 50.0);
        let out = show(&b);
        assert!(
            out.contains("| t.toml#a | 3 | 100.0 | 2.9 % | 26.6 % | 10 % | 500.0 | abcd0123 |\n"),
            "{out}"
        );
        assert!(
            out.contains("| phase:validate | 1 | 5.0 | 1.0 % | - | 50 % | - | abcd0123 |\n"),
            "{out}"
        );
        assert!(out.contains("| validation_ms | - | 50.0 |"), "{out}");
    }

    #[test]
    fn diff_marks_moves_additions_and_removals() {
        let old = baseline(&[("a#x", &[100.0]), ("a#y", &[100.0]), ("a#gone", &[1.0])]);
        let new = baseline(&[("a#x", &[120.0]), ("a#y", &[101.0]), ("a#new", &[1.0])]);
        let out = diff(&old, &new);
        assert!(out.starts_with("3 key(s) moved"), "{out}");
        assert!(
            out.contains("| a#x | 100.0 | 120.0 | +20.0 % | 1 → 1 | ↑ slower |"),
            "{out}"
        );
        assert!(
            out.contains("| a#y | 100.0 | 101.0 | +1.0 % | 1 → 1 | ≈ |"),
            "{out}"
        );
        assert!(
            out.contains("| a#gone | 1.0 | - | - | 1 → 0 | removed |"),
            "{out}"
        );
        assert!(
            out.contains("| a#new | - | 1.0 | - | 0 → 1 | added |"),
            "{out}"
        );
    }

    #[test]
    fn drift_separates_common_mode_from_creep() {
        let mut b = baseline(&[("a#1", &[100.0]), ("a#2", &[100.0]), ("a#3", &[100.0])]);
        b.set_anchor("v0.1.0", "2026-01-01T00:00:00Z");
        // Everything 10 % slower (runner fleet), a#3 another +20 % on top (creep).
        for (k, v) in [("a#1", 110.0), ("a#2", 110.0), ("a#3", 132.0)] {
            b.keys.get_mut(k).expect("present").history = vec![Entry {
                ms: v,
                fp: "f".into(),
                at: "later".into(),
            }];
        }
        let out = drift(&b, Some("v0.1.0")).expect("anchor exists");
        assert!(
            out.contains("common-mode +10.0 %, 1 key(s) slower"),
            "{out}"
        );
        assert!(
            out.contains("| a#3 | 100.0 | 132.0 | +32.0 % | +20.0 % | ↑ slower |"),
            "{out}"
        );
        assert!(
            out.contains("| a#1 | 100.0 | 110.0 | +10.0 % | +0.0 % | ≈ |"),
            "{out}"
        );
        assert!(matches!(drift(&b, Some("v9")), Err(PerfError::UnknownAnchor(l)) if l == "v9"));
        assert!(matches!(
            drift(&Baseline::default(), None),
            Err(PerfError::UnknownAnchor(_))
        ));
    }
}
