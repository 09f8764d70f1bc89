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
    /// `--filter` expressions (see [`Filter`]): a scenario is selected when it matches one of
    /// the positive filters (or there is none) and none of the negated ones.
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

/// One `--filter` expression, in the spirit of nextest's filtersets:
/// `TEXT` (substring of `test`, `test/scenario` or the path), a glob when it holds `*`, `?` or
/// `[` (`api-*`, `*/smoke*`, `tests/db/**`), `name~REGEX` (regex on `test` and
/// `test/scenario`), `tag:TAG` (test or scenario tag; globs allowed), `path:GLOB`; a leading
/// `!` negates (`!slow`, `!tag:flaky`).
#[derive(Debug, Clone)]
pub struct Filter {
    negated: bool,
    term: Term,
}

#[derive(Debug, Clone)]
enum Term {
    Text(String),
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
    Tag(globset::GlobMatcher),
    Path(globset::GlobMatcher),
}

fn glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid glob `{pattern}`: {}", e.kind()))
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negated, body) = match s.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, s),
        };
        if body.is_empty() {
            return Err(format!("empty filter `{s}`"));
        }
        let term = if let Some(re) = body
            .strip_prefix("name~")
            .or_else(|| body.strip_prefix('~'))
        {
            Term::Regex(regex::Regex::new(re).map_err(|e| format!("invalid regex in `{s}`: {e}"))?)
        } else if let Some(tag) = body.strip_prefix("tag:") {
            Term::Tag(glob(tag)?)
        } else if let Some(p) = body.strip_prefix("path:") {
            Term::Path(glob(p)?)
        } else if body.contains(['*', '?', '[']) {
            Term::Glob(glob(body.strip_prefix("name:").unwrap_or(body))?)
        } else {
            Term::Text(body.strip_prefix("name:").unwrap_or(body).to_string())
        };
        Ok(Filter { negated, term })
    }
}

/// What one scenario is matched on.
struct Candidate<'a> {
    test: &'a str,
    full: &'a str,
    path: &'a str,
    tags: &'a [String],
    scenario_tags: &'a [String],
}

impl Filter {
    fn hits(&self, c: &Candidate<'_>) -> bool {
        let named = |f: &dyn Fn(&str) -> bool| f(c.test) || f(c.full);
        match &self.term {
            Term::Text(t) => named(&|s| s.contains(t.as_str())) || c.path.contains(t.as_str()),
            Term::Glob(g) => named(&|s| g.is_match(s)) || g.is_match(c.path),
            Term::Regex(r) => named(&|s| r.is_match(s)),
            Term::Tag(g) => c.tags.iter().chain(c.scenario_tags).any(|t| g.is_match(t)),
            Term::Path(g) => g.is_match(c.path) || c.path.contains(g.glob().glob()),
        }
    }
}

/// Parse `--filter` values (clap calls this to reject a bad one as a usage error).
pub fn check_filter(s: &str) -> Result<String, String> {
    s.parse::<Filter>().map(|_| s.to_string())
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
    // Validated by the command line; an expression that does not parse selects nothing.
    let filters: Vec<Option<Filter>> = sel.filters.iter().map(|f| f.parse().ok()).collect();
    let path = t.path.display().to_string();
    let name = t.name.clone();
    let test_tags = t.tags.clone();
    let positives = filters
        .iter()
        .filter(|f| !matches!(f, Some(f) if f.negated))
        .count();
    t.scenarios.retain(|s| {
        let full = format!("{name}/{}", s.name);
        let c = Candidate {
            test: &name,
            full: &full,
            path: &path,
            tags: &test_tags,
            scenario_tags: &s.tags,
        };
        let mut selected = positives == 0;
        for f in &filters {
            match f {
                Some(f) if f.negated && f.hits(&c) => return false,
                Some(f) if !f.negated && f.hits(&c) => selected = true,
                _ => {}
            }
        }
        selected
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

    fn spec(name: &str, path: &str, tags: &[&str], scenarios: &[(&str, &[&str])]) -> TestSpec {
        use crate::suite::*;
        TestSpec {
            path: path.into(),
            name: name.into(),
            description: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            timeout: None,
            retries: None,
            services: BTreeMap::new(),
            scenarios: scenarios
                .iter()
                .map(|(n, tags)| ScenarioSpec {
                    name: n.to_string(),
                    description: None,
                    service: None,
                    timeout: None,
                    retries: None,
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    steps: Vec::new(),
                    line: 1,
                    skip: None,
                    expect: Default::default(),
                })
                .collect(),
            perf: PerfSpec::default(),
            determinism: Determinism::default(),
            expect: Default::default(),
            dialect: Dialect::Current,
            content_hash: String::new(),
            skip: None,
            report: ReportSpec::default(),
        }
    }

    /// `test/scenario` of everything `filters` selects.
    fn chosen(filters: &[&str]) -> Vec<String> {
        let suite = vec![
            spec(
                "api-users",
                "tests/api/users.clnrm.toml",
                &["smoke"],
                &[("list", &[]), ("slow export", &["slow"])],
            ),
            spec(
                "api-orders",
                "tests/api/orders.clnrm.toml",
                &[],
                &[("create", &["smoke"])],
            ),
            spec(
                "db",
                "tests/db/db.clnrm.toml",
                &["slow"],
                &[("migrate", &[])],
            ),
        ];
        let sel = Selection {
            filters: filters.iter().map(|f| f.to_string()).collect(),
            ..Selection::default()
        };
        select(suite, &sel, &BTreeMap::new())
            .iter()
            .flat_map(|t| {
                t.scenarios
                    .iter()
                    .map(move |s| format!("{}/{}", t.name, s.name))
            })
            .collect()
    }

    #[test]
    fn filters_like_nextest() {
        let all = [
            "api-users/list",
            "api-users/slow export",
            "api-orders/create",
            "db/migrate",
        ];
        assert_eq!(chosen(&[]), all);
        assert_eq!(
            chosen(&["!tag:slow"]),
            ["api-users/list", "api-orders/create"]
        );
        assert_eq!(chosen(&["name~^api-o"]), ["api-orders/create"]);
        assert_eq!(
            chosen(&["tag:smoke"]),
            [
                "api-users/list",
                "api-users/slow export",
                "api-orders/create"
            ]
        );
        assert_eq!(
            chosen(&["tag:smoke", "!slow"]),
            ["api-users/list", "api-orders/create"]
        );
        assert_eq!(chosen(&["api-*/c*"]), ["api-orders/create"]);
        assert_eq!(chosen(&["path:tests/db/**"]), ["db/migrate"]);
        assert_eq!(chosen(&["users/list"]), ["api-users/list"]);
        assert_eq!(chosen(&["!api"]), ["db/migrate"]);
        assert!(chosen(&["nothing-matches"]).is_empty());
        assert!(check_filter("name~(")
            .unwrap_err()
            .contains("invalid regex"));
        assert!(check_filter("!").unwrap_err().contains("empty filter"));
        assert!(check_filter("tag:[").unwrap_err().contains("invalid glob"));
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
