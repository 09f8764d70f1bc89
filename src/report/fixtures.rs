//! Hand-built run results with fixed durations, shared by the reporters' tests and snapshots.

use std::collections::BTreeMap;

use crate::results::{
    BackendKind, Backends, Failure, Fingerprint, LoadError, PerfRow, PerfSummary, Phase,
    RunResults, ScenarioResult, SpeedVerdict, Status, StepResult, TestResult, Verdict,
    SCHEMA_VERSION,
};

pub fn step(name: &str, line: u32, status: Status, ms: f64, stdout: &str) -> StepResult {
    StepResult {
        name: name.to_string(),
        line,
        service: "app".to_string(),
        command: format!("sh -c '{name}'"),
        status,
        exit_code: Some(if status == Status::Passed { 0 } else { 1 }),
        duration_ms: ms,
        stdout: stdout.to_string(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        failures: Vec::new(),
    }
}

pub fn scenario(
    name: &str,
    line: u32,
    status: Status,
    ms: f64,
    steps: Vec<StepResult>,
) -> ScenarioResult {
    ScenarioResult {
        duration_ms: ms,
        step_ms: steps.iter().map(|s| s.duration_ms).fold(0.0, |a, b| a + b),
        phases: BTreeMap::from([(Phase::Create, 12.0), (Phase::Start, 160.0)]),
        steps,
        ..ScenarioResult::new(name, line, status)
    }
}

pub fn test(name: &str, scenarios: Vec<ScenarioResult>) -> TestResult {
    let status = scenarios
        .iter()
        .map(|s| s.status)
        .find(|s| s.is_failure())
        .unwrap_or(Status::Passed);
    TestResult {
        name: name.to_string(),
        path: format!("tests/{name}.clnrm.toml"),
        tags: vec!["smoke".to_string()],
        status,
        duration_ms: scenarios.iter().map(|s| s.duration_ms).sum(),
        scenarios,
    }
}

pub fn results(tests: Vec<TestResult>) -> RunResults {
    RunResults {
        schema_version: SCHEMA_VERSION,
        clnrm_version: "0.1.0".to_string(),
        run_id: "run-0001".to_string(),
        started_at: "2026-01-02T03:04:05Z".to_string(),
        duration_ms: 4321.0,
        backend: Backends::one(BackendKind::Docker),
        fingerprint: Fingerprint {
            cpu_model: "Test CPU".to_string(),
            cores: 2,
            kernel: "6.1.0".to_string(),
            docker_version: Some("20.10".to_string()),
        },
        suite_id: "suite-abc".to_string(),
        shard: None,
        phases: BTreeMap::from([
            (Phase::Discover, 2.0),
            (Phase::Validate, 5.0),
            (Phase::Plan, 0.5),
            (Phase::Run, 4200.0),
            (Phase::Cleanup, 100.0),
        ]),
        load_errors: Vec::new(),
        tests,
        perf: None,
        aborted: None,
        empty_shard: false,
        missing_shards: Vec::new(),
    }
}

/// A run with every status, a load error and multi-step failures.
pub fn mixed() -> RunResults {
    let mut check = step("check", 30, Status::Failed, 31.5, "HTTP/1.1 500\n");
    check.stderr = "error: boom\n".to_string();
    check.failures = vec![
        Failure {
            expectation: "exit_code".to_string(),
            expected: "0".to_string(),
            actual: "1".to_string(),
        },
        Failure {
            expectation: "stdout.contains".to_string(),
            expected: "\"created\"".to_string(),
            actual: "\"HTTP/1.1 500\\n\"".to_string(),
        },
    ];
    let api = test(
        "api",
        vec![
            scenario(
                "health",
                10,
                Status::Passed,
                123.0,
                vec![step("ping", 12, Status::Passed, 30.0, "ok\n")],
            ),
            scenario(
                "create user",
                24,
                Status::Failed,
                250.25,
                vec![step("post", 27, Status::Passed, 40.0, "{}\n"), check],
            ),
        ],
    );
    let mut migrate = scenario(
        "migrate",
        8,
        Status::Flaky,
        1500.0,
        vec![step("up", 9, Status::Passed, 1400.0, "")],
    );
    migrate.attempts = 2;
    let mut backup = scenario("backup", 20, Status::Skipped, 0.0, Vec::new());
    backup.message = Some("skipped by --tag filter".to_string());
    let mut wait = step("wait", 33, Status::TimedOut, 5000.0, "waiting...\n");
    wait.exit_code = None;
    wait.failures = vec![Failure {
        expectation: "timeout".to_string(),
        expected: "at most 5 s".to_string(),
        actual: "killed after 5 s".to_string(),
    }];
    let mut restore = scenario("restore", 31, Status::TimedOut, 5012.0, vec![wait]);
    restore.message = Some("step `wait` timed out after 5 s".to_string());
    let db = test("db", vec![migrate, backup, restore]);
    let mut boot = scenario("boot", 5, Status::Error, 3.0, Vec::new());
    boot.message = Some("image `nope:latest` not found".to_string());
    let infra = test("infra", vec![boot]);
    let mut r = results(vec![api, db, infra]);
    r.load_errors = vec![LoadError {
        path: "tests/broken.clnrm.toml".to_string(),
        line: Some(3),
        column: Some(1),
        message: "unknown key `servce`\nhint: did you mean `service`?".to_string(),
        hint: None,
    }];
    r
}

fn row(key: &str, base: Option<f64>, now: f64, verdict: &str) -> PerfRow {
    let (test, scenario) = key.split_once('#').unwrap_or(("", key));
    let ratio = base.map(|b| now / b);
    PerfRow {
        key: key.to_string(),
        test: test
            .trim_start_matches("tests/")
            .trim_end_matches(".clnrm.toml")
            .to_string(),
        scenario: scenario.to_string(),
        baseline_ms: base,
        current_ms: now,
        ratio,
        normalised_ratio: ratio.map(|r| r / 1.05),
        mde: base.map(|_| 0.08),
        verdict: Verdict::parse(verdict).expect("a verdict name"),
        fingerprint_match: true,
        low_resolution: false,
        budget_ms: None,
        note: None,
        tolerance: (!key.starts_with("phase:")).then_some(0.1),
    }
}

/// [`mixed`] compared against a baseline.
pub fn with_perf() -> RunResults {
    let mut r = mixed();
    let mut fast = row("tests/api.clnrm.toml#health", Some(40.0), 30.0, "improved");
    fast.fingerprint_match = false;
    let mut budget = row(
        "tests/db.clnrm.toml#migrate",
        Some(1300.0),
        1400.0,
        "budget-exceeded",
    );
    budget.budget_ms = Some(1000.0);
    let mut tiny = row("phase:validate", Some(5.0), 5.0, "unchanged");
    tiny.low_resolution = true;
    r.perf = Some(PerfSummary {
        baseline_path: ".clnrm/perf-baseline.toml".to_string(),
        speed_factor: Some(1.05),
        speed_verdict: SpeedVerdict::Ok,
        failed: true,
        // Sorted as the contract says: in `Verdict` order, then by key.
        rows: vec![
            row(
                "tests/api.clnrm.toml#create user",
                Some(50.0),
                71.5,
                "regressed",
            ),
            budget,
            row("tests/db.clnrm.toml#restore", None, 5000.0, "new"),
            fast,
            tiny,
        ],
        notes: vec!["1 scenario re-measured".to_string()],
        compared: 4,
        speed_sample: 4,
        speed_warn_above: Some(1.2),
        speed_fail_above: Some(1.35),
    });
    r
}

/// Output written to break every format: markup, fences, mentions, control bytes.
pub const HOSTILE: &str = "a | b | c\n```\n````\n</details>\n<script>alert(1)</script>\n\
     @org/team please look, fixes #123\n]]> & </system-out>\n\u{1b}[31mred\u{1b}[0m\u{0}\u{7}\n";

/// A failing scenario whose names and output are hostile, one step with 10 MB of output.
pub fn hostile() -> RunResults {
    let mut s = step("evil `step` | <b>", 7, Status::Failed, 12.0, HOSTILE);
    s.stderr = format!("{}{HOSTILE}", "x".repeat(10 * 1024 * 1024));
    s.failures = vec![Failure {
        expectation: "stdout.equals".to_string(),
        expected: "</details> @org/team".to_string(),
        actual: HOSTILE.to_string(),
    }];
    let mut t = test(
        "evil",
        vec![scenario(
            "pipe | `tick` </details> @org/team #1",
            5,
            Status::Failed,
            12.0,
            vec![s],
        )],
    );
    t.name = "evil <script> @here".to_string();
    results(vec![t])
}

/// [`mixed`] with telemetry on: a passing scenario with spans, and a failing one whose
/// span expectation did not hold (as `telemetry::handle::apply` records it).
pub fn with_telemetry() -> RunResults {
    use crate::results::ScenarioTelemetry;
    let mut r = mixed();
    let api = &mut r.tests[0];
    api.scenarios[0].telemetry = Some(ScenarioTelemetry {
        spans: 4,
        errors: 0,
        dropped: 0,
        failed_expectations: 0,
        file: Some("out/spans/api/health.otlp.jsonl".into()),
    });
    let sc = &mut api.scenarios[1];
    sc.telemetry = Some(ScenarioTelemetry {
        spans: 2,
        errors: 1,
        dropped: 3,
        failed_expectations: 1,
        file: Some("out/spans/api/create_user.otlp.jsonl".into()),
    });
    r
}
