//! Merging the results of the shards of one run (`clnrm report a.json b.json`) into one.
//!
//! Rules, chosen so that merging the shards of a run gives the results of the same run
//! unsharded (up to the run id):
//! - tests are concatenated and sorted by path; a test in two shards is an error;
//! - load errors are deduplicated (every shard validates every file) and sorted;
//! - `duration_ms` is the maximum: shards run in parallel, so the run took as long as
//!   its slowest shard; `started_at` is the earliest start;
//! - tool phases: `discover`, `validate` and `plan` cover the whole suite in every shard,
//!   so the maximum is kept; the others (`run`, `cleanup`, ...) scale with the tests a
//!   shard ran, so they are summed (total work, as one unsharded run would report it);
//! - run ids and backends that differ are joined with `+`; the fingerprint is the first
//!   shard's (by shard index);
//! - perf summaries: rows concatenated (one row per key, the most severe kept), `failed`
//!   if any shard failed, the speed factor kept only when all shards agree;
//! - `shard` is `None` in the result; `missing_shards` lists the shards of the run that
//!   were not given (every shard writes results, an empty one too).

use std::collections::BTreeMap;

use crate::results::{Backends, PerfRow, PerfSummary, Phase, RunResults, TestResult};

use super::error::ReportError;

/// Merge shard results; errors name them `results #1`, `results #2`, ... in input order.
pub fn merge(shards: Vec<RunResults>) -> Result<RunResults, ReportError> {
    merge_named(
        shards
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("results #{}", i + 1), r))
            .collect(),
    )
}

/// Merge shard results, each with a name (its file path) used in error messages.
pub fn merge_named(shards: Vec<(String, RunResults)>) -> Result<RunResults, ReportError> {
    let mut shards: Vec<(String, RunResults)> = shards
        .into_iter()
        .map(|(name, r)| {
            let label = match &r.shard {
                Some(s) => format!("`{name}` (shard {}/{})", s.index, s.count),
                None => format!("`{name}`"),
            };
            (label, r)
        })
        .collect();
    // Unsharded inputs sort last, in their given order (the sort is stable).
    shards.sort_by_key(|(_, r)| r.shard.as_ref().map_or(u32::MAX, |s| s.index));
    let Some((first_label, first)) = shards.first() else {
        return Err(ReportError::MergeEmpty);
    };
    for (label, r) in &shards[1..] {
        let mismatch = |field, a: String, b: String| ReportError::MergeMismatch {
            field,
            first: first_label.clone(),
            first_value: a,
            second: label.clone(),
            second_value: b,
        };
        if r.schema_version != first.schema_version {
            return Err(mismatch(
                "schema_version",
                first.schema_version.to_string(),
                r.schema_version.to_string(),
            ));
        }
        if r.clnrm_version != first.clnrm_version {
            return Err(mismatch(
                "clnrm_version",
                first.clnrm_version.clone(),
                r.clnrm_version.clone(),
            ));
        }
        if r.suite_id != first.suite_id {
            return Err(mismatch(
                "suite_id",
                first.suite_id.clone(),
                r.suite_id.clone(),
            ));
        }
        if let (Some(a), Some(b)) = (&first.shard, &r.shard) {
            if a.count != b.count {
                return Err(mismatch(
                    "shard count",
                    a.count.to_string(),
                    b.count.to_string(),
                ));
            }
        }
    }
    for pair in shards.windows(2) {
        if let (Some(a), Some(b)) = (&pair[0].1.shard, &pair[1].1.shard) {
            if a.index == b.index {
                return Err(ReportError::MergeDuplicateShard {
                    index: a.index,
                    first: pair[0].0.clone(),
                    second: pair[1].0.clone(),
                });
            }
        }
    }

    // Move the tests out (no copies of megabytes of output), then clone what is left.
    let mut tests: Vec<(usize, TestResult)> = Vec::new();
    for (i, (_, r)) in shards.iter_mut().enumerate() {
        tests.extend(std::mem::take(&mut r.tests).into_iter().map(|t| (i, t)));
    }
    // Stable: equal paths stay in shard order, so the error names them in order.
    tests.sort_by(|a, b| a.1.path.cmp(&b.1.path));
    if let Some(pair) = tests.windows(2).find(|p| p[0].1.path == p[1].1.path) {
        return Err(ReportError::MergeDuplicateTest {
            path: pair[0].1.path.clone(),
            first: shards[pair[0].0].0.clone(),
            second: shards[pair[1].0].0.clone(),
        });
    }
    let mut merged = shards[0].1.clone();
    merged.tests = tests.into_iter().map(|(_, t)| t).collect();
    merged.shard = None;
    merged.run_id = joined(shards.iter().map(|(_, r)| r.run_id.as_str()));
    merged.backend = Backends::join(shards.iter().map(|(_, r)| &r.backend));
    merged.duration_ms = shards
        .iter()
        .map(|(_, r)| r.duration_ms)
        .fold(0.0, f64::max);
    merged.started_at = earliest(shards.iter().map(|(_, r)| r.started_at.as_str()));
    merged.phases = merge_phases(shards.iter().map(|(_, r)| &r.phases));

    merged.load_errors = shards
        .iter()
        .flat_map(|(_, r)| r.load_errors.iter().cloned())
        .collect();
    merged.load_errors.sort_by(|a, b| {
        (&a.path, a.line, a.column, &a.message).cmp(&(&b.path, b.line, b.column, &b.message))
    });
    merged.load_errors.dedup();

    let aborted: Vec<String> = shards
        .iter()
        .filter_map(|(label, r)| r.aborted.as_ref().map(|why| (label, why)))
        .map(|(label, why)| {
            if shards.len() > 1 {
                format!("{label}: {why}")
            } else {
                why.clone()
            }
        })
        .collect();
    merged.aborted = (!aborted.is_empty()).then(|| aborted.join("; "));

    merged.perf = merge_perf(&shards)?;
    merged.empty_shard = false;
    merged.missing_shards = crate::results::missing_shards(shards.iter().map(|(_, r)| r));
    Ok(merged)
}

/// The distinct values in first-seen order, joined with `+`.
fn joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join("+")
}

fn earliest<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values
        .min_by_key(|s| {
            // Unparseable times sort after every real one, then by their text.
            let t = chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_nanos_opt());
            (t.is_none(), t.flatten(), s.to_string())
        })
        .unwrap_or_default()
        .to_string()
}

fn merge_phases<'a>(all: impl Iterator<Item = &'a BTreeMap<Phase, f64>>) -> BTreeMap<Phase, f64> {
    let mut out: BTreeMap<Phase, f64> = BTreeMap::new();
    for phases in all {
        for (phase, ms) in phases {
            let slot = out.entry(*phase).or_insert(0.0);
            if phase.is_whole_suite() {
                *slot = slot.max(*ms);
            } else {
                *slot += ms;
            }
        }
    }
    out
}

fn merge_perf(shards: &[(String, RunResults)]) -> Result<Option<PerfSummary>, ReportError> {
    let with_perf: Vec<(&String, &PerfSummary)> = shards
        .iter()
        .filter_map(|(l, r)| r.perf.as_ref().map(|p| (l, p)))
        .collect();
    let Some((first_label, first)) = with_perf.first() else {
        return Ok(None);
    };
    let mut merged = (*first).clone();
    let mut rows: BTreeMap<String, PerfRow> = BTreeMap::new();
    for (label, p) in &with_perf {
        if p.baseline_path != first.baseline_path {
            return Err(ReportError::MergeMismatch {
                field: "perf baseline",
                first: (*first_label).clone(),
                first_value: first.baseline_path.clone(),
                second: (*label).clone(),
                second_value: p.baseline_path.clone(),
            });
        }
        merged.failed |= p.failed;
        if !std::ptr::eq(*p, *first) {
            // Shards run different scenarios: what each compared adds up.
            merged.compared += p.compared;
            merged.speed_sample += p.speed_sample;
        }
        if p.speed_verdict > merged.speed_verdict {
            merged.speed_verdict = p.speed_verdict;
        }
        for row in &p.rows {
            let keep_new = rows
                .get(&row.key)
                .is_none_or(|old| row.verdict < old.verdict);
            if keep_new {
                rows.insert(row.key.clone(), row.clone());
            }
        }
        for note in &p.notes {
            if !merged.notes.contains(note) {
                merged.notes.push(note.clone());
            }
        }
    }
    if with_perf
        .iter()
        .any(|(_, p)| p.speed_factor != first.speed_factor)
    {
        merged.speed_factor = None;
        let per_shard: Vec<String> = with_perf
            .iter()
            .map(|(l, p)| match p.speed_factor {
                Some(f) => format!("{l} ×{f:.3}"),
                None => format!("{l} none"),
            })
            .collect();
        merged.notes.push(format!(
            "runner speed factor differs per shard: {}",
            per_shard.join(", ")
        ));
    }
    let mut rows: Vec<PerfRow> = rows.into_values().collect();
    rows.sort_by(|a, b| (a.verdict, &a.key).cmp(&(b.verdict, &b.key)));
    merged.rows = rows;
    Ok(Some(merged))
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
