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
    /// Backend used (`docker`, `local` or `fake`; merged shards of different backends join
    /// them with `+`).
    pub backend: Backends,
    pub fingerprint: Fingerprint,
    /// Identifies the suite: sha256 over the sorted test names. Shards of one run share it.
    pub suite_id: String,
    pub shard: Option<Shard>,
    /// Tool phases of the whole run in ms (`discover`, `validate`, `plan`, `run`, `gate`,
    /// `cleanup`).
    pub phases: BTreeMap<Phase, f64>,
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
    /// This shard was given none of the selected tests (fewer tests than shards, or the
    /// balance left it none): nothing ran, and that is not a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_shard: bool,
    /// Shards of the run whose results were not given to a merge (`clnrm report`), by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<u32>,
}

/// Shards of a run absent from `inputs`, by index: empty unless the inputs are shards of one
/// `count`. Every shard writes results (an empty one too), so an absent one is a job that
/// failed before writing or an artifact that was not downloaded.
pub fn missing_shards<'a>(inputs: impl IntoIterator<Item = &'a RunResults>) -> Vec<u32> {
    let mut count = None;
    let mut present = std::collections::BTreeSet::new();
    for r in inputs {
        let Some(s) = &r.shard else {
            return Vec::new();
        };
        count = Some(s.count);
        present.insert(s.index);
    }
    match count {
        Some(n) => (1..=n).filter(|i| !present.contains(i)).collect(),
        None => Vec::new(),
    }
}

impl RunResults {
    /// Account for a phase that ran after the plan (gate, cleanup): it counts in the run's
    /// wall time too.
    pub fn add_phase(&mut self, phase: Phase, ms: f64) {
        *self.phases.entry(phase).or_default() += ms;
        self.duration_ms += ms;
    }

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
    /// What to do about it, when the loader knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
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
    pub phases: BTreeMap<Phase, f64>,
    pub steps: Vec<StepResult>,
    /// Failure summary (first failing step or infrastructure error).
    pub message: Option<String>,
    /// How the steps reached the environment's containers (Docker backend only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Why the agent was not used, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_note: Option<String>,
    /// Spans collected for the final attempt, when telemetry was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<ScenarioTelemetry>,
    /// The failed attempts before the final one (which is this result), oldest first: each
    /// with its own steps and output. Empty when the first attempt was the final one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_attempts: Vec<AttemptResult>,
    /// How the final attempt's environment was shared, when its services asked for reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentUse>,
    /// The `ports` published for the final attempt's environment (on 127.0.0.1 of the
    /// machine that ran it; closed once the environment was removed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<crate::suite::PublishedPort>,
}

impl ScenarioResult {
    /// A result with nothing recorded yet: no time, one attempt, no steps, no message; the
    /// rest is filled in as the scenario runs (or by struct update in tests and fixtures).
    pub fn new(name: impl Into<String>, line: u32, status: Status) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            line,
            status,
            duration_ms: 0.0,
            step_ms: 0.0,
            attempts: 1,
            phases: BTreeMap::new(),
            steps: Vec::new(),
            message: None,
            transport: None,
            transport_note: None,
            telemetry: None,
            previous_attempts: Vec::new(),
            environment: None,
            published: Vec::new(),
        }
    }
}

/// Reuse of a scenario's environment, shown in the results so a shared state is never a
/// surprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentUse {
    /// Who may share it: the scenarios of one test, or every test with identical services.
    pub reuse: ReuseScope,
    /// It had served an earlier scenario already.
    pub reused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReuseScope {
    /// `reuse = true`: the scenarios of one test.
    Test,
    /// `reuse = "suite"`: every test whose services are identical.
    Suite,
}

/// What the telemetry of a scenario came to (plain data for reporters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioTelemetry {
    /// Spans attributed to the scenario (clnrm's own scenario and step spans included).
    pub spans: usize,
    /// Spans with status error.
    pub errors: usize,
    /// Spans dropped over the per-scenario cap.
    pub dropped: usize,
    /// Telemetry expectations that did not hold.
    pub failed_expectations: usize,
    /// The saved spans (OTLP JSON lines), when they were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One failed attempt of a scenario that was retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptResult {
    /// 1-based attempt number.
    pub attempt: u32,
    pub status: Status,
    /// Wall time of the attempt, including waiting for its environment, ms.
    pub duration_ms: f64,
    pub steps: Vec<StepResult>,
    pub message: Option<String>,
}

impl AttemptResult {
    /// The record of `result`, a finished attempt.
    pub fn of(result: &ScenarioResult) -> AttemptResult {
        AttemptResult {
            attempt: result.attempts,
            status: result.status,
            duration_ms: result.duration_ms,
            steps: result.steps.clone(),
            message: result.message.clone(),
        }
    }
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
    /// The verdict on the speed factor itself.
    pub speed_verdict: SpeedVerdict,
    /// Overall: true when the gate fails the job (confirmed regression or broken budget).
    pub failed: bool,
    /// Rows sorted: regressions first, then by key.
    pub rows: Vec<PerfRow>,
    /// Free-form notes (e.g. "3 scenarios re-measured").
    pub notes: Vec<String>,
    /// Scenarios timed both in this run and in the baseline: those the speed factor is the
    /// median over (0: nothing was compared).
    #[serde(default)]
    pub compared: usize,
    /// Scenarios the speed factor is the median over: those with a full history when there
    /// are any, else every compared one (0 in results written before this field existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub speed_sample: usize,
    /// Speed factor above which the runner's speed warns, and above which it fails the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_warn_above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_fail_above: Option<f64>,
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
    pub verdict: Verdict,
    pub fingerprint_match: bool,
    /// Scenario shorter than the exec jitter can resolve.
    pub low_resolution: bool,
    pub budget_ms: Option<f64>,
    pub note: Option<String>,
    /// Smallest slowdown beyond the runner speed that counts for this key (0.1 = 10 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

/// Where scenarios ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Containers through the Docker API (bollard), pooled.
    Docker,
    /// Processes on this host in a temporary folder.
    Local,
    /// Scripted results, for tests of the runner.
    Fake,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Docker => "docker",
            BackendKind::Local => "local",
            BackendKind::Fake => "fake",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The backends of a run: one, or several when shards that ran on different backends were
/// merged. Serialised as their names joined by `+` (`docker`, `docker+local`), in first-seen
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backends(Vec<BackendKind>);

impl Backends {
    pub fn one(kind: BackendKind) -> Backends {
        Backends(vec![kind])
    }

    /// The union in first-seen order.
    pub fn join<'a>(all: impl IntoIterator<Item = &'a Backends>) -> Backends {
        let mut out: Vec<BackendKind> = Vec::new();
        for k in all.into_iter().flat_map(|b| b.0.iter()) {
            if !out.contains(k) {
                out.push(*k);
            }
        }
        Backends(out)
    }

    pub fn kinds(&self) -> &[BackendKind] {
        &self.0
    }
}

impl std::fmt::Display for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|k| k.as_str()).collect();
        f.write_str(&names.join("+"))
    }
}

impl Serialize for Backends {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Backends {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Backends::default());
        }
        s.split('+')
            .map(|name| {
                BackendKind::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(name))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Backends)
    }
}

/// A timed phase. Tool phases (`discover` .. `gate`) belong to the whole run,
/// infrastructure phases (`env_wait` .. `ready`) to one scenario's environment; `cleanup` is
/// both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Discover,
    Validate,
    Plan,
    Run,
    Gate,
    EnvWait,
    Create,
    Start,
    Ready,
    Cleanup,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Discover,
        Phase::Validate,
        Phase::Plan,
        Phase::Run,
        Phase::Gate,
        Phase::EnvWait,
        Phase::Create,
        Phase::Start,
        Phase::Ready,
        Phase::Cleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Discover => "discover",
            Phase::Validate => "validate",
            Phase::Plan => "plan",
            Phase::Run => "run",
            Phase::Gate => "gate",
            Phase::EnvWait => "env_wait",
            Phase::Create => "create",
            Phase::Start => "start",
            Phase::Ready => "ready",
            Phase::Cleanup => "cleanup",
        }
    }

    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Phases that only the whole suite has, whatever the shard (merged by maximum).
    pub fn is_whole_suite(self) -> bool {
        matches!(self, Phase::Discover | Phase::Validate | Phase::Plan)
    }
}

/// Maps keyed by phase serialise in name order, as they did when the keys were strings, so
/// the JSON results stay byte-compatible.
impl Ord for Phase {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Phase {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The perf gate's verdict on one key. Declaration order is report order: what fails the
/// job first, then what needs a look, then the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Confirmed slower than the baseline beyond tolerance and noise.
    Regressed,
    /// Above a hard budget.
    BudgetExceeded,
    /// Slower, but not confirmed (or too little history to fail on).
    Warn,
    /// A regression acknowledged with `--ack`.
    Acknowledged,
    /// Flagged at screening, not confirmed by re-measurement.
    Inconclusive,
    /// The baseline's spread is too wide to judge.
    TooNoisy,
    /// In the baseline, not in this run.
    Missing,
    /// In this run, not in the baseline.
    New,
    Improved,
    Unchanged,
}

impl Verdict {
    pub const ALL: [Verdict; 10] = [
        Verdict::Regressed,
        Verdict::BudgetExceeded,
        Verdict::Warn,
        Verdict::Acknowledged,
        Verdict::Inconclusive,
        Verdict::TooNoisy,
        Verdict::Missing,
        Verdict::New,
        Verdict::Improved,
        Verdict::Unchanged,
    ];

    pub fn parse(name: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::BudgetExceeded => "budget-exceeded",
            Verdict::Warn => "warn",
            Verdict::Acknowledged => "acknowledged",
            Verdict::Inconclusive => "inconclusive",
            Verdict::TooNoisy => "too-noisy",
            Verdict::Missing => "missing",
            Verdict::New => "new",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
        }
    }

    /// Fails the job.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::BudgetExceeded)
    }

    /// Slower than expected in some way: fails, warns, or was acknowledged.
    pub fn is_slower(self) -> bool {
        matches!(
            self,
            Verdict::Regressed | Verdict::BudgetExceeded | Verdict::Warn | Verdict::Acknowledged
        )
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on the runner's speed factor; declaration order is severity.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SpeedVerdict {
    #[default]
    Ok,
    Warn,
    Fail,
}

impl SpeedVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            SpeedVerdict::Ok => "ok",
            SpeedVerdict::Warn => "warn",
            SpeedVerdict::Fail => "fail",
        }
    }
}

impl std::fmt::Display for SpeedVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// Keep at most about `limit` bytes of a captured stream as (lossy) UTF-8: its head and its
/// tail, with a marker stating how many bytes were cut between them (`cut_at_capture` bytes
/// already dropped by the backend's bounded capture, plus what this cut removes).
pub fn clip_output(bytes: &[u8], cut_at_capture: u64, limit: usize) -> (String, bool) {
    if bytes.len() <= limit && cut_at_capture == 0 {
        return (String::from_utf8_lossy(bytes).into_owned(), false);
    }
    let (head, tail, dropped) = if bytes.len() <= limit {
        // The capture already split the stream: the seam is at its head limit.
        let h = bytes.len().min(crate::backend::capture::CAPTURE_HEAD);
        (&bytes[..h], &bytes[h..], 0)
    } else {
        let half = limit / 2;
        (
            &bytes[..half],
            &bytes[bytes.len() - half..],
            bytes.len() - 2 * half,
        )
    };
    let cut = cut_at_capture + dropped as u64;
    // Lossy decoding at the seams replaces a split character with U+FFFD, never panics.
    // Secrets are masked in each part and, where the cut split one, in what is left of it.
    let mut head = crate::secrets::mask(&String::from_utf8_lossy(head)).into_owned();
    let mut tail = crate::secrets::mask(&String::from_utf8_lossy(tail)).into_owned();
    crate::secrets::mask_seam(&mut head, &mut tail);
    (format!("{head}\n[... {cut} bytes cut ...]\n{tail}"), true)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_are_the_indexes_not_given() {
        let shard = |index, count| RunResults {
            shard: Some(Shard { index, count }),
            ..crate::report::fixtures::results(Vec::new())
        };
        assert_eq!(missing_shards([&shard(1, 4), &shard(3, 4)]), [2, 4]);
        assert!(missing_shards([&shard(1, 2), &shard(2, 2)]).is_empty());
        assert!(missing_shards([&crate::report::fixtures::results(Vec::new())]).is_empty());
        assert!(missing_shards([]).is_empty());
    }

    #[test]
    fn clipping_keeps_head_and_tail_and_states_the_cut() {
        let (s, cut) = clip_output(b"0123456789", 0, 4);
        assert_eq!(s, "01\n[... 6 bytes cut ...]\n89");
        assert!(cut);
        let (s, cut) = clip_output(b"abc", 0, 4);
        assert_eq!((s.as_str(), cut), ("abc", false));
        let (s, _) = clip_output(b"0123456789", 1000, 4);
        assert_eq!(s, "01\n[... 1006 bytes cut ...]\n89");
    }

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
