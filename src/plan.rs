//! Plan: which loaded tests run, in which shard and order (pure).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::results::{display_path, LoadError, Phase};
use crate::suite::TestSpec;

/// What one run executes: the selected tests in order, and what identifies the run.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub tests: Vec<Arc<TestSpec>>,
    /// sha256 over the sorted names of every loaded test: shards of one suite share it.
    pub suite_id: String,
    pub shard: Option<ShardSpec>,
    /// Invalid test files: when there are any, nothing runs (what validates is what runs).
    pub load_errors: Vec<LoadError>,
    /// Tool phases spent before the run: `discover`, `validate`, `plan`.
    pub phases: BTreeMap<Phase, f64>,
    /// Filters and tags selected tests, but this shard was given none of them.
    pub empty_shard: bool,
}

impl Plan {
    /// Select from every loaded test. `durations` (test path -> expected ms) balances shards.
    pub fn new(all: Vec<TestSpec>, sel: &Selection, durations: &BTreeMap<String, f64>) -> Plan {
        let suite_id = suite_id(&all);
        let chosen: Vec<TestSpec> = all
            .into_iter()
            .filter_map(|t| filter_test(t, sel))
            .collect();
        let any_chosen = !chosen.is_empty();
        let tests = shard_split(chosen, sel.shard, durations);
        Plan {
            empty_shard: sel.shard.is_some() && any_chosen && tests.is_empty(),
            tests,
            suite_id,
            shard: sel.shard,
            load_errors: Vec::new(),
            phases: BTreeMap::new(),
        }
    }

    /// The same run reduced to the scenarios named by `keys` (`path#scenario`): what the
    /// gate re-measures.
    pub fn only_scenarios(&self, keys: &[String]) -> Plan {
        let tests = self
            .tests
            .iter()
            .filter_map(|t| {
                let path = display_path(&t.path);
                let mut t2 = (**t).clone();
                t2.scenarios
                    .retain(|s| keys.contains(&crate::perf::measure::scenario_key(&path, &s.name)));
                (!t2.scenarios.is_empty()).then(|| Arc::new(t2))
            })
            .collect();
        Plan {
            tests,
            ..self.clone()
        }
    }

    pub fn scenarios(&self) -> usize {
        self.tests.iter().map(|t| t.scenarios.len()).sum()
    }

    /// Whether any service names an image (and so needs Docker).
    pub fn needs_image(&self) -> bool {
        self.tests
            .iter()
            .any(|t| t.services.values().any(|s| s.image.is_some()))
    }
}

/// sha256 over the sorted test names.
fn suite_id(tests: &[TestSpec]) -> String {
    let mut names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    hex::encode(&Sha256::digest(names.join("\n").as_bytes())[..8])
}

/// `--shard k/n`: this job runs shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form k/n (e.g. 2/4)"))?;
        let index: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{k}` is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard `{s}` is out of range: need 1 <= k <= n"));
        }
        Ok(ShardSpec { index, count })
    }
}

/// Selection criteria from the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Substrings matched against `test name`, `test name/scenario name` and the path; any match
    /// selects the test (all its scenarios, or only matching scenarios when the filter names one).
    pub filters: Vec<String>,
    /// Tags: a test is selected when it or one of its scenarios carries any of them.
    pub tags: Vec<String>,
    pub shard: Option<ShardSpec>,
}

/// Apply filters, tags and sharding. `durations` (test path -> expected ms, from the baseline)
/// balances shards; without it shards split by a stable hash of the test name.
pub fn select(
    tests: Vec<TestSpec>,
    sel: &Selection,
    durations: &BTreeMap<String, f64>,
) -> Vec<Arc<TestSpec>> {
    let chosen: Vec<TestSpec> = tests
        .into_iter()
        .filter_map(|t| filter_test(t, sel))
        .collect();
    shard_split(chosen, sel.shard, durations)
}

/// The tests of one shard (all of them without sharding).
fn shard_split(
    mut chosen: Vec<TestSpec>,
    shard: Option<ShardSpec>,
    durations: &BTreeMap<String, f64>,
) -> Vec<Arc<TestSpec>> {
    if let Some(shard) = shard {
        let names: Vec<(String, Option<f64>)> = chosen
            .iter()
            .map(|t| {
                let path = crate::results::display_path(&t.path);
                let d = durations.get(&path).copied();
                (path, d)
            })
            .collect();
        let assignment = assign_shards(&names, shard.count);
        chosen = chosen
            .into_iter()
            .zip(assignment)
            .filter(|(_, a)| *a + 1 == shard.index)
            .map(|(t, _)| t)
            .collect();
    }
    chosen.into_iter().map(Arc::new).collect()
}

fn filter_test(mut t: TestSpec, sel: &Selection) -> Option<TestSpec> {
    if !sel.tags.is_empty() {
        let test_tagged = t.tags.iter().any(|g| sel.tags.contains(g));
        if !test_tagged {
            t.scenarios
                .retain(|s| s.tags.iter().any(|g| sel.tags.contains(g)));
            if t.scenarios.is_empty() {
                return None;
            }
        }
    }
    if sel.filters.is_empty() {
        return Some(t);
    }
    let path = t.path.display().to_string();
    if sel
        .filters
        .iter()
        .any(|f| t.name.contains(f.as_str()) || path.contains(f.as_str()))
    {
        return Some(t);
    }
    let name = t.name.clone();
    t.scenarios.retain(|s| {
        let full = format!("{name}/{}", s.name);
        sel.filters.iter().any(|f| full.contains(f.as_str()))
    });
    (!t.scenarios.is_empty()).then_some(t)
}

/// Shard index (0-based) of each test. With durations for every test: longest processing time
/// first onto the least loaded shard (ties by name, so every job computes the same split).
/// Tests without a recorded duration get the median of the known ones; with none known, a
/// stable hash of the name decides.
pub fn assign_shards(tests: &[(String, Option<f64>)], count: u32) -> Vec<u32> {
    let count = count.max(1);
    let mut known: Vec<f64> = tests.iter().filter_map(|(_, d)| *d).collect();
    if known.is_empty() {
        return tests.iter().map(|(n, _)| hash_shard(n, count)).collect();
    }
    known.sort_by(f64::total_cmp);
    let fallback = known[known.len() / 2];
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_by(|&a, &b| {
        let da = tests[a].1.unwrap_or(fallback);
        let db = tests[b].1.unwrap_or(fallback);
        db.total_cmp(&da).then_with(|| tests[a].0.cmp(&tests[b].0))
    });
    let mut load = vec![0.0f64; count as usize];
    let mut out = vec![0u32; tests.len()];
    for i in order {
        let (shard, _) = load
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(&b.0)))
            .expect("count >= 1");
        load[shard] += tests[i].1.unwrap_or(fallback);
        out[i] = shard as u32;
    }
    out
}

fn hash_shard(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"));
    (n % u64::from(count)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shard_spec_parses_and_rejects() {
        assert_eq!(
            "2/4".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 4 })
        );
        assert!("0/4"
            .parse::<ShardSpec>()
            .unwrap_err()
            .contains("out of range"));
        assert!("5/4".parse::<ShardSpec>().is_err());
        assert!("x".parse::<ShardSpec>().unwrap_err().contains("k/n"));
    }

    #[test]
    fn lpt_balances_skewed_durations() {
        let tests: Vec<_> = [100.0, 90.0, 10.0, 10.0, 10.0, 10.0, 5.0, 5.0]
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("t{i}"), Some(*d)))
            .collect();
        let a = assign_shards(&tests, 2);
        let mut load = [0.0; 2];
        for (i, s) in a.iter().enumerate() {
            load[*s as usize] += tests[i].1.unwrap();
        }
        assert_eq!(load, [120.0, 120.0]);
    }

    proptest! {
        #[test]
        fn every_test_lands_in_exactly_one_shard(
            durations in proptest::collection::vec(proptest::option::of(1.0f64..1e5), 0..60),
            count in 1u32..9,
        ) {
            let tests: Vec<_> = durations.iter().enumerate()
                .map(|(i, d)| (format!("test-{i}"), *d)).collect();
            let a = assign_shards(&tests, count);
            prop_assert_eq!(a.len(), tests.len());
            prop_assert!(a.iter().all(|s| *s < count));
            // Deterministic: the same input gives the same split in every job.
            prop_assert_eq!(a, assign_shards(&tests, count));
        }
    }
}
