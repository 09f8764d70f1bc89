//! Scheduler behaviour on the fake backend: scripted exit codes, outputs and durations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::backend::fake::{FakeBackend, FakeReply};
use crate::plan::Plan;
use crate::suite::*;

fn step(name: &str, sh: &str) -> StepSpec {
    StepSpec {
        line: 10,
        ..StepSpec::shell(name, "app", sh)
    }
}

fn test(name: &str, scenarios: Vec<(&str, Vec<StepSpec>)>) -> Arc<TestSpec> {
    let test = TestSpec::named(name).with_service(ServiceSpec::named("app").with_image("img"));
    Arc::new(scenarios.into_iter().fold(test, |t, (n, steps)| {
        t.with_scenario(ScenarioSpec {
            line: 5,
            ..ScenarioSpec::new(n, steps)
        })
    }))
}

/// Script: `exit N` exits N, `echo X` prints X, `sleep MS` takes MS milliseconds.
fn scripted() -> FakeBackend {
    FakeBackend::new(|_svc, req| {
        let cmd = req.argv.last().cloned().unwrap_or_default();
        let mut reply = FakeReply::default();
        for part in cmd.split(';').map(str::trim) {
            if let Some(n) = part.strip_prefix("exit ") {
                reply.exit_code = n.parse().expect("test script exit code");
            } else if let Some(s) = part.strip_prefix("echo ") {
                reply.stdout.push_str(s);
                reply.stdout.push('\n');
            } else if let Some(s) = part.strip_prefix("warn ") {
                reply.stderr.push_str(s);
            } else if let Some(ms) = part.strip_prefix("sleep ") {
                reply.delay = Duration::from_millis(ms.parse().expect("test script delay"));
            }
        }
        Ok(reply)
    })
}

async fn run_with(
    backend: FakeBackend,
    tests: Vec<Arc<TestSpec>>,
    opts: RunOptions,
) -> (Vec<TestResult>, Arc<crate::backend::fake::FakeStats>) {
    let stats = backend.stats.clone();
    let results = run(tests, Arc::new(backend), &opts, &Cancel::new()).await;
    (results, stats)
}

/// One run through [`run_plan`]: the results are collected from the events.
async fn run(
    tests: Vec<Arc<TestSpec>>,
    backend: Arc<dyn Backend>,
    opts: &RunOptions,
    cancel: &Cancel,
) -> Vec<TestResult> {
    let plan = Plan {
        tests,
        ..Default::default()
    };
    let mut events = Vec::new();
    let results = run_plan(&plan, &backend, opts, &RunHeader::default(), cancel, |ev| {
        events.push(ev.clone())
    })
    .await;
    // Every scenario reports once, and each test closes the stream in plan order.
    let finished = events
        .iter()
        .filter(|e| matches!(e, RunEvent::ScenarioFinished { .. }))
        .count();
    let scenarios: usize = plan.tests.iter().map(|t| t.scenarios.len()).sum();
    let started = events
        .iter()
        .filter(|e| matches!(e, RunEvent::ScenarioStarted { .. }))
        .count();
    assert!(finished <= scenarios && started == finished, "{events:#?}");
    assert_eq!(
        results.backend.kinds(),
        &[crate::results::BackendKind::Fake]
    );
    results.tests
}

#[tokio::test]
async fn passing_and_failing_scenarios_are_reported_exactly() {
    let mut wants_3 = step("three", "exit 3");
    wants_3.expect.exit_code = 3;
    let t = test(
        "t",
        vec![
            ("ok", vec![step("a", "echo hi"), wants_3]),
            ("bad", vec![step("b", "exit 3"), step("never", "echo x")]),
        ],
    );
    let (results, stats) = run_with(scripted(), vec![t], RunOptions::default()).await;
    let sc = &results[0].scenarios;
    assert_eq!(sc[0].status, Status::Passed);
    assert_eq!(sc[1].status, Status::Failed);
    assert_eq!(sc[1].steps[0].status, Status::Failed);
    assert_eq!(
        sc[1].steps[0].failures[0].to_string(),
        "exit_code: expected 0, got 3"
    );
    assert_eq!(sc[1].steps[1].status, Status::Skipped);
    assert_eq!(results[0].status, Status::Failed);
    assert_eq!(stats.released_healthy.load(Ordering::SeqCst), 1);
    assert_eq!(stats.released_unhealthy.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn output_expectations_use_the_right_stream() {
    let mut s = step("s", "echo out; warn err");
    s.expect.stdout.contains = vec!["out".into()];
    s.expect.stderr.equals = Some("err".into());
    let mut wrong = step("w", "echo out");
    wrong.expect.stderr.contains = vec!["out".into()];
    let t = test("t", vec![("a", vec![s]), ("b", vec![wrong])]);
    let (results, _) = run_with(scripted(), vec![t], RunOptions::default()).await;
    assert_eq!(results[0].scenarios[0].status, Status::Passed);
    assert_eq!(results[0].scenarios[1].status, Status::Failed);
    assert_eq!(
        results[0].scenarios[1].steps[0].failures[0].expectation,
        "stderr.contains"
    );
}

#[tokio::test]
async fn step_timeout_is_reported_and_destroys_the_env() {
    let mut slow = step("slow", "sleep 5000");
    slow.timeout = Some(Duration::from_millis(50));
    let t = test("t", vec![("a", vec![slow, step("after", "echo x")])]);
    let (results, stats) = run_with(scripted(), vec![t], RunOptions::default()).await;
    let sc = &results[0].scenarios[0];
    assert_eq!(sc.status, Status::TimedOut);
    assert_eq!(sc.steps[0].status, Status::TimedOut);
    assert_eq!(sc.steps[1].status, Status::Skipped);
    assert!(sc
        .message
        .as_deref()
        .unwrap()
        .contains("killed after 50 ms (step timeout)"));
    assert_eq!(stats.released_unhealthy.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn scenario_timeout_caps_the_step_timeout() {
    let t = {
        let mut t = (*test("t", vec![("a", vec![step("slow", "sleep 5000")])])).clone();
        t.scenarios[0].timeout = Some(Duration::from_millis(80));
        Arc::new(t)
    };
    let (results, _) = run_with(scripted(), vec![t], RunOptions::default()).await;
    let msg = results[0].scenarios[0].message.clone().unwrap();
    assert!(msg.contains("(scenario/test timeout)"), "{msg}");
}

#[tokio::test]
async fn retries_mark_flaky_and_count_attempts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let backend = FakeBackend::new(move |_, _| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        Ok(FakeReply {
            exit_code: if n == 0 { 1 } else { 0 },
            ..Default::default()
        })
    });
    let t = test("t", vec![("a", vec![step("s", "x")])]);
    let opts = RunOptions {
        retries: Some(2),
        ..Default::default()
    };
    let (results, _) = run_with(backend, vec![t], opts).await;
    let sc = &results[0].scenarios[0];
    assert_eq!(sc.status, Status::Flaky);
    assert_eq!(sc.attempts, 2);
    assert_eq!(results[0].status, Status::Flaky);
    // The failed first attempt is kept with its own steps; the final one is the result.
    assert_eq!(sc.previous_attempts.len(), 1);
    let first = &sc.previous_attempts[0];
    assert_eq!((first.attempt, first.status), (1, Status::Failed));
    assert_eq!(first.steps[0].exit_code, Some(1));
    assert_eq!(sc.steps[0].exit_code, Some(0));
}

/// Every event of one run of `tests`.
async fn events_of(
    backend: FakeBackend,
    tests: Vec<Arc<TestSpec>>,
    opts: RunOptions,
) -> Vec<RunEvent> {
    let plan = Plan {
        tests,
        ..Default::default()
    };
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let mut events = Vec::new();
    run_plan(
        &plan,
        &backend,
        &opts,
        &RunHeader::default(),
        &Cancel::new(),
        |ev| events.push(ev.clone()),
    )
    .await;
    events
}

#[tokio::test]
async fn a_retried_attempt_is_an_event_with_its_record_and_the_attempt_budget() {
    let t = test("t", vec![("a", vec![step("s", "echo out; exit 1")])]);
    let opts = RunOptions {
        retries: Some(2),
        ..Default::default()
    };
    let events = events_of(scripted(), vec![t], opts).await;
    let retried: Vec<(u32, u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Retrying {
                failed,
                max_attempts,
                ..
            } => Some((
                failed.attempt,
                *max_attempts,
                failed.steps[0].stdout.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        retried,
        vec![(1, 3, "out\n".to_string()), (2, 3, "out\n".to_string())]
    );
    let finished: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::ScenarioFinished {
                result,
                max_attempts,
                ..
            } => Some((result.attempts, *max_attempts)),
            _ => None,
        })
        .collect();
    assert_eq!(finished, vec![(3, 3)]);
}

#[tokio::test]
async fn a_scenario_still_running_after_the_slow_timeout_is_reported_per_period() {
    let t = test("t", vec![("slow", vec![step("s", "sleep 400")])]);
    let slow = |opts: RunOptions| async {
        let tests = vec![t.clone()];
        events_of(scripted(), tests, opts)
            .await
            .into_iter()
            .filter_map(|e| match e {
                RunEvent::Slow {
                    scenario, elapsed, ..
                } => Some((scenario, elapsed)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let reported = slow(RunOptions {
        slow_timeout: Some(Duration::from_millis(150)),
        ..Default::default()
    })
    .await;
    // At least the first two periods of the 400 ms scenario, each a multiple of the timeout.
    assert!(reported.len() >= 2, "{reported:?}");
    assert_eq!(
        reported[..2],
        [
            ("slow".to_string(), Duration::from_millis(150)),
            ("slow".to_string(), Duration::from_millis(300))
        ]
    );
    assert!(slow(RunOptions::default()).await.is_empty());
}

#[tokio::test]
async fn the_slow_timer_starts_again_with_each_attempt() {
    let t = test("t", vec![("slow", vec![step("s", "sleep 250; exit 1")])]);
    let opts = RunOptions {
        retries: Some(1),
        slow_timeout: Some(Duration::from_millis(150)),
        ..Default::default()
    };
    let reported: Vec<(u32, Duration)> = events_of(scripted(), vec![t], opts)
        .await
        .into_iter()
        .filter_map(|e| match e {
            RunEvent::Slow {
                attempt, elapsed, ..
            } => Some((attempt, elapsed)),
            _ => None,
        })
        .collect();
    // Timed over the whole scenario (with the backoff between attempts) it would be reported
    // at 150, 300, 450 and 600 ms.
    assert_eq!(
        reported,
        vec![
            (1, Duration::from_millis(150)),
            (2, Duration::from_millis(150))
        ]
    );
}

#[tokio::test]
async fn retries_exhausted_stay_failed() {
    let t = test("t", vec![("a", vec![step("s", "exit 1")])]);
    let opts = RunOptions {
        retries: Some(1),
        ..Default::default()
    };
    let (results, stats) = run_with(scripted(), vec![t], opts).await;
    assert_eq!(results[0].scenarios[0].status, Status::Failed);
    assert_eq!(results[0].scenarios[0].attempts, 2);
    let previous = &results[0].scenarios[0].previous_attempts;
    assert_eq!(previous.len(), 1);
    assert_eq!(
        (previous[0].attempt, previous[0].status),
        (1, Status::Failed)
    );
    assert_eq!(stats.acquired.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn continue_on_failure_runs_the_rest_and_keeps_the_scenario_green() {
    let mut allowed = step("allowed", "exit 2");
    allowed.continue_on_failure = true;
    let t = test("t", vec![("a", vec![allowed, step("next", "echo ok")])]);
    let (results, _) = run_with(scripted(), vec![t], RunOptions::default()).await;
    let sc = &results[0].scenarios[0];
    assert_eq!(sc.steps[0].status, Status::Failed);
    assert_eq!(sc.steps[1].status, Status::Passed);
    assert_eq!(sc.status, Status::Passed);
}

#[tokio::test]
async fn fail_fast_skips_what_has_not_started() {
    let tests = vec![
        test("a", vec![("1", vec![step("s", "exit 1")])]),
        test("b", vec![("1", vec![step("s", "echo ok")])]),
        test("c", vec![("1", vec![step("s", "echo ok")])]),
    ];
    let opts = RunOptions {
        jobs: 1,
        fail_fast: true,
        ..Default::default()
    };
    let (results, _) = run_with(scripted(), tests, opts).await;
    let statuses: Vec<_> = results.iter().map(|t| t.status).collect();
    assert_eq!(statuses, [Status::Failed, Status::Skipped, Status::Skipped]);
}

#[tokio::test]
async fn acquire_errors_are_infrastructure_errors_with_a_hint() {
    let mut backend = scripted();
    backend.acquire_error = Some("nope:1".into());
    let t = test("t", vec![("a", vec![step("s", "echo")])]);
    let (results, _) = run_with(backend, vec![t], RunOptions::default()).await;
    let sc = &results[0].scenarios[0];
    assert_eq!(sc.status, Status::Error);
    let msg = sc.message.as_deref().unwrap();
    assert!(
        msg.starts_with("image `nope:1` is not available locally"),
        "{msg}"
    );
    assert!(msg.contains("hint: "), "{msg}");
}

#[tokio::test]
async fn scenarios_run_in_parallel_up_to_jobs() {
    let tests: Vec<_> = (0..4)
        .map(|i| test(&format!("t{i}"), vec![("a", vec![step("s", "sleep 200")])]))
        .collect();
    let opts = RunOptions {
        jobs: 4,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let (results, stats) = run_with(scripted(), tests, opts).await;
    // Sequentially this takes 800 ms; four at once take about 200 ms.
    assert!(started.elapsed() < Duration::from_millis(700));
    assert!(results.iter().all(|t| t.status == Status::Passed));
    assert_eq!(stats.prewarmed.load(Ordering::SeqCst), 4);
    assert_eq!(results[0].scenarios[0].step_ms, 200.0);
}

#[tokio::test]
async fn cancel_mid_run_reports_skipped_without_hanging() {
    let tests = vec![
        test("a", vec![("1", vec![step("s", "sleep 10000")])]),
        test("b", vec![("1", vec![step("s", "echo ok")])]),
    ];
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        canceller.cancel("interrupted by SIGINT");
    });
    let opts = RunOptions {
        jobs: 1,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let results = run(tests, Arc::new(scripted()), &opts, &cancel).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(results[0].scenarios[0].status, Status::Skipped);
    assert_eq!(results[1].scenarios[0].status, Status::Skipped);
}

#[tokio::test]
async fn a_lost_backend_stops_the_run_and_names_the_cause() {
    // The daemon "dies" at the first exec of scenario `b`: every exec after that fails too.
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dead.clone();
    let backend = FakeBackend::new(move |_svc, req| {
        let cmd = req.argv.last().cloned().unwrap_or_default();
        if cmd == "die" {
            flag.store(true, Ordering::SeqCst);
        }
        if flag.load(Ordering::SeqCst) {
            return Err(crate::backend::BackendError::Unavailable(
                "read exec output: error in the hyper legacy client".into(),
            ));
        }
        Ok(FakeReply::default())
    });
    let scenarios: Vec<(&str, Vec<StepSpec>)> = vec![
        ("a", vec![step("s", "true")]),
        ("b", vec![step("s", "die")]),
        ("c", vec![step("s", "true")]),
        ("d", vec![step("s", "true")]),
    ];
    let t = test("t", scenarios);
    let opts = RunOptions {
        jobs: 1,
        ..Default::default()
    };
    let (mut results, stats) = run_with(backend, vec![t], opts).await;
    assert!(mark_backend_lost(&mut results));
    let got: Vec<(Status, String)> = results[0]
        .scenarios
        .iter()
        .map(|s| (s.status, s.message.clone().unwrap_or_default()))
        .collect();
    assert_eq!(got[0], (Status::Passed, String::new()));
    assert_eq!(
        got[1],
        (
            Status::Error,
            "backend lost: docker daemon unavailable: read exec output: error in the hyper legacy client".into()
        )
    );
    for g in &got[2..] {
        assert_eq!(
            g,
            &(
                Status::Error,
                "backend lost: the run stopped before this scenario finished".into()
            )
        );
    }
    // Promptly: nothing ran after the loss.
    assert_eq!(stats.execs.lock().expect("lock").len(), 2);
    assert_eq!(results[0].status, Status::Error);
}

#[tokio::test]
async fn skipped_tests_and_scenarios_never_run_and_say_why() {
    let mut t = (*test(
        "t",
        vec![
            ("a", vec![step("s", "echo a")]),
            ("b", vec![step("s", "echo b")]),
        ],
    ))
    .clone();
    t.scenarios[1].skip = Some("waits for a fix".into());
    let mut whole = (*test("w", vec![("c", vec![step("s", "echo c")])])).clone();
    whole.skip = Some("not on this runner".into());
    let (results, stats) = run_with(
        scripted(),
        vec![Arc::new(t), Arc::new(whole)],
        RunOptions::default(),
    )
    .await;
    assert_eq!(results[0].scenarios[0].status, Status::Passed);
    let b = &results[0].scenarios[1];
    assert_eq!(b.status, Status::Skipped);
    assert_eq!(b.message.as_deref(), Some("skipped: waits for a fix"));
    assert_eq!(b.steps[0].status, Status::Skipped);
    assert_eq!(results[1].status, Status::Skipped);
    assert_eq!(
        results[1].scenarios[0].message.as_deref(),
        Some("skipped: not on this runner")
    );
    // Only scenario `a` acquired an environment.
    assert_eq!(stats.released_healthy.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn step_retries_rerun_a_step_until_it_meets_its_expectations() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // Fails twice, then passes.
    let backend = FakeBackend::new(move |_svc, _req| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        Ok(FakeReply {
            exit_code: if n < 2 { 1 } else { 0 },
            ..FakeReply::default()
        })
    });
    let mut flaky = step("flaky", "x");
    flaky.retries = 2;
    let t = test("t", vec![("a", vec![flaky])]);
    let (results, _) = run_with(backend, vec![t], RunOptions::default()).await;
    assert_eq!(results[0].scenarios[0].status, Status::Passed);
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let backend = FakeBackend::new(move |_svc, _req| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(FakeReply {
            exit_code: 1,
            ..FakeReply::default()
        })
    });
    let mut failing = step("failing", "x");
    failing.retries = 1;
    let t = test("t", vec![("a", vec![failing])]);
    let (results, _) = run_with(backend, vec![t], RunOptions::default()).await;
    assert_eq!(results[0].scenarios[0].status, Status::Failed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn results_show_how_an_environment_is_shared() {
    let shared = |reuse: bool, suite: bool| {
        let t = test("r", vec![("1", vec![step("s", "echo ok")])]);
        let mut t = (*t).clone();
        for s in t.services.values_mut() {
            (s.reuse, s.reuse_suite) = (reuse, suite);
        }
        Arc::new(t)
    };
    let opts = RunOptions::default();
    let (r, _) = run_with(scripted(), vec![shared(false, false)], opts.clone()).await;
    assert_eq!(r[0].scenarios[0].environment, None);
    let (r, _) = run_with(scripted(), vec![shared(true, false)], opts.clone()).await;
    let env = r[0].scenarios[0].environment.expect("reuse shown");
    assert_eq!(env.reuse, crate::results::ReuseScope::Test);
    let (r, _) = run_with(scripted(), vec![shared(true, true)], opts).await;
    let env = r[0].scenarios[0].environment.expect("reuse shown");
    assert_eq!(env.reuse, crate::results::ReuseScope::Suite);
    assert!(
        !env.reused,
        "the fake backend always builds a fresh environment"
    );
}
