//! Run results: the versioned, serialisable record of one run (or one shard of a run).
//!
//! The runner builds it from its event stream; every reporter, the perf gate and
//! `clnrm report` consume it. Field names are part of the JSON contract: add fields, never
//! rename them, and bump [`SCHEMA_VERSION`] on an incompatible change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the JSON results format.
pub const SCHEMA_VERSION: u32 = 1;

/// Bytes of stdout/stderr kept per step in results (the rest is cut, with a flag).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub clnrm_version: String,
    pub run_id: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall time of the whole run, ms.
    pub duration_ms: f64,
    /// Backend used: `docker`, `local` or `fake`.
    pub backend: String,
    pub fingerprint: Fingerprint,
    /// Identifies the suite: sha256 over the sorted test names. Shards of one run share it.
    pub suite_id: String,
    pub shard: Option<Shard>,
    /// Tool phases of the whole run in ms (`discover`, `validate`, `plan`, `run`, `cleanup`).
    pub phases: BTreeMap<String, f64>,
    /// Test files that failed to load (validation errors), rendered as plain text.
    pub load_errors: Vec<LoadError>,
    /// Tests sorted by path.
    pub tests: Vec<TestResult>,
    /// Perf gate verdicts, present when a baseline was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<PerfSummary>,
    /// Whether the run was cut short (signal, fail-fast).
    #[serde(default)]
    pub aborted: Option<String>,
}

impl RunResults {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for test in &self.tests {
            for sc in &test.scenarios {
                t.scenarios += 1;
                match sc.status {
                    Status::Passed => t.passed += 1,
                    Status::Flaky => t.flaky += 1,
                    Status::Failed | Status::TimedOut | Status::Error => t.failed += 1,
                    Status::Skipped => t.skipped += 1,
                }
            }
        }
        t.load_errors = self.load_errors.len();
        t
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub scenarios: usize,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub skipped: usize,
    pub load_errors: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based index.
    pub index: u32,
    pub count: u32,
}

/// Coarse description of the machine a run was measured on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub cpu_model: String,
    pub cores: u32,
    pub kernel: String,
    pub docker_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadError {
    pub path: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    /// Failed at least once, then passed on a retry.
    Flaky,
    Failed,
    TimedOut,
    /// Infrastructure error (image missing, container died, backend error).
    Error,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Flaky => "flaky",
            Status::Failed => "failed",
            Status::TimedOut => "timed out",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }

    /// Failed in the sense of the exit code (flaky counts only with `--flaky-fail`).
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::TimedOut | Status::Error)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub path: String,
    pub tags: Vec<String>,
    pub status: Status,
    pub duration_ms: f64,
    pub scenarios: Vec<ScenarioResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub line: u32,
    pub status: Status,
    /// Wall time of the final attempt, including waiting for its environment, ms.
    pub duration_ms: f64,
    /// Sum of step exec times of the final attempt, ms: what the perf gate measures.
    pub step_ms: f64,
    /// Attempts made (1 = passed or failed first time).
    pub attempts: u32,
    /// Infrastructure phases of the final attempt in ms: `env_wait`, `create`, `start`,
    /// `ready`, `cleanup`.
    pub phases: BTreeMap<String, f64>,
    pub steps: Vec<StepResult>,
    /// Failure summary (first failing step or infrastructure error).
    pub message: Option<String>,
    /// How the steps reached the environment's containers (Docker backend only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Why the agent was not used, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_note: Option<String>,
}

/// How steps reached a Docker environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The in-container agent over a unix socket.
    Agent,
    /// One `docker exec` per step.
    Exec,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Agent => "agent",
            Transport::Exec => "exec",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    pub line: u32,
    pub service: String,
    /// Human form of the command.
    pub command: String,
    pub status: Status,
    pub exit_code: Option<i64>,
    pub duration_ms: f64,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// Failed expectations (empty when passed).
    pub failures: Vec<Failure>,
}

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// e.g. `exit_code`, `stdout.contains`, `stderr.regex`, `timeout`.
    pub expectation: String,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.expectation, self.expected, self.actual
        )
    }
}

/// What the perf gate concluded, in the form every reporter renders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfSummary {
    /// Path of the baseline file compared against.
    pub baseline_path: String,
    /// Common-mode runner speed factor (median of current / baseline centre).
    pub speed_factor: Option<f64>,
    /// `ok`, `warn` or `fail` for the speed factor itself.
    pub speed_verdict: String,
    /// Overall: true when the gate fails the job (confirmed regression or broken budget).
    pub failed: bool,
    /// Rows sorted: regressions first, then by key.
    pub rows: Vec<PerfRow>,
    /// Free-form notes (e.g. "3 scenarios re-measured").
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfRow {
    /// `path#scenario` (scenario rows) or `phase:<name>` (phase rows).
    pub key: String,
    pub test: String,
    pub scenario: String,
    pub baseline_ms: Option<f64>,
    pub current_ms: f64,
    /// current / baseline centre, before removing the runner speed.
    pub ratio: Option<f64>,
    /// ratio / speed factor.
    pub normalised_ratio: Option<f64>,
    /// Minimum detectable effect as a fraction (0.12 = 12 %).
    pub mde: Option<f64>,
    /// regressed, warn, inconclusive, improved, unchanged, new, missing, too-noisy,
    /// budget-exceeded, acknowledged.
    pub verdict: String,
    pub fingerprint_match: bool,
    /// Scenario shorter than the exec jitter can resolve.
    pub low_resolution: bool,
    pub budget_ms: Option<f64>,
    pub note: Option<String>,
}

/// How a test file's path is written in results and baseline keys: as discovered, without a
/// leading `./`, so `clnrm run` and `clnrm run .` agree.
pub fn display_path(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    match s.strip_prefix("./") {
        Some(rest) => rest.to_string(),
        None => s,
    }
}

/// Keep at most `limit` bytes of `bytes` as (lossy) UTF-8, cut on a char boundary.
pub fn truncate_output(bytes: &[u8], limit: usize) -> (String, bool) {
    let s = String::from_utf8_lossy(bytes);
    if s.len() <= limit {
        return (s.into_owned(), false);
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let (s, cut) = truncate_output("ééé".as_bytes(), 3);
        assert_eq!(s, "é");
        assert!(cut);
        let (s, cut) = truncate_output(b"abc", 3);
        assert_eq!(s, "abc");
        assert!(!cut);
    }
}
