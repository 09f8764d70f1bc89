//! The verdict of a run as an exit code: a pure function of the results.

use crate::exit;
use crate::results::RunResults;

/// Exit code of a finished run. Test failures win over everything (1); invalid test files
/// give 2; a perf regression alone gives 3; nothing selected gives 4 (an empty shard of a
/// suite that has tests is not that: it passes).
pub fn exit_code(results: &RunResults, flaky_fail: bool) -> u8 {
    let t = results.totals();
    if t.failed > 0 || (flaky_fail && t.flaky > 0) {
        return exit::TESTS_FAILED;
    }
    if t.load_errors > 0 {
        return exit::USAGE;
    }
    if results.perf.as_ref().is_some_and(|p| p.failed) {
        return exit::PERF_REGRESSION;
    }
    if t.scenarios == 0 && !results.empty_shard {
        return exit::NO_TESTS;
    }
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::*;
    use std::collections::BTreeMap;

    fn results(statuses: &[Status]) -> RunResults {
        RunResults {
            schema_version: SCHEMA_VERSION,
            clnrm_version: "0".into(),
            run_id: "r".into(),
            started_at: "t".into(),
            duration_ms: 0.0,
            backend: Backends::one(BackendKind::Fake),
            fingerprint: Fingerprint::default(),
            suite_id: "s".into(),
            shard: None,
            phases: BTreeMap::new(),
            load_errors: vec![],
            tests: vec![TestResult {
                name: "t".into(),
                path: "t.clnrm.toml".into(),
                tags: vec![],
                status: Status::Passed,
                duration_ms: 0.0,
                scenarios: statuses
                    .iter()
                    .map(|s| ScenarioResult::new(format!("{s:?}"), 1, *s))
                    .collect(),
            }],
            perf: None,
            aborted: None,
            empty_shard: false,
            missing_shards: Vec::new(),
        }
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(exit_code(&results(&[Status::Passed]), false), 0);
        assert_eq!(
            exit_code(&results(&[Status::Passed, Status::Failed]), false),
            1
        );
        assert_eq!(exit_code(&results(&[Status::TimedOut]), false), 1);
        assert_eq!(exit_code(&results(&[Status::Error]), false), 1);
        assert_eq!(exit_code(&results(&[Status::Flaky]), false), 0);
        assert_eq!(exit_code(&results(&[Status::Flaky]), true), 1);
        assert_eq!(exit_code(&results(&[]), false), 4);
        let mut r = results(&[Status::Passed]);
        r.perf = Some(PerfSummary {
            failed: true,
            ..Default::default()
        });
        assert_eq!(exit_code(&r, false), 3);
        // A test failure wins over a perf regression.
        r.tests[0].scenarios[0].status = Status::Failed;
        assert_eq!(exit_code(&r, false), 1);
    }
}
