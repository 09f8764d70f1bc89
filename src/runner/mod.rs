//! Scheduler: runs the scenarios of a plan on a backend, in parallel up to `jobs`, and emits
//! [`RunEvent`]s; [`run_plan`] collects them into the run's results. Pass/fail is not decided
//! here: results go to `crate::outcome`.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use crate::results::{ScenarioResult, Status, TestResult};
use crate::suite::TestSpec;

mod cancel;
mod collect;
pub mod event;
pub mod executor;
pub mod expect;

pub use crate::backend::{clean_all, open as open_backend, Backend, BackendConfig, BackendError};
pub use cancel::Cancel;
pub use collect::{ms_since, now_rfc3339, results_without_run, run_plan, Collector, RunHeader};
pub use event::RunEvent;
use executor::{run_scenario, ScenarioJob};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenarios running at once.
    pub jobs: usize,
    /// Stop starting scenarios after the first failure.
    pub fail_fast: bool,
    /// Overrides `retries` of every test and scenario when set.
    pub retries: Option<u32>,
    /// Environments announced to the backend ahead of the running ones.
    pub lookahead: usize,
    /// Span collection and checks, when the run has telemetry on.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// A scenario still running after each multiple of this is reported slow (`None`: never).
    pub slow_timeout: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            jobs: 2,
            fail_fast: false,
            retries: None,
            lookahead: 2,
            telemetry: None,
            slow_timeout: None,
        }
    }
}

/// Run every scenario of `tests` (already filtered and ordered by the plan) and report each
/// outcome as an event; a `TestFinished` per test, in the order of `tests`, ends the stream.
/// Cancelling stops the run: nothing new starts, in-flight execs are abandoned and reported
/// as skipped.
async fn schedule(
    tests: Vec<Arc<TestSpec>>,
    backend: Arc<dyn Backend>,
    opts: RunOptions,
    events: mpsc::UnboundedSender<RunEvent>,
    cancel: Cancel,
) {
    let events = Some(events);
    let jobs = opts.jobs.max(1);
    let mut queue = Vec::new();
    let deadlines: Vec<Arc<OnceLock<Option<Instant>>>> =
        tests.iter().map(|_| Arc::new(OnceLock::new())).collect();
    for (ti, test) in tests.iter().enumerate() {
        for si in 0..test.scenarios.len() {
            queue.push((ti, si));
        }
    }
    send(
        &events,
        RunEvent::Started {
            tests: tests.len(),
            scenarios: queue.len(),
        },
    );

    // Announce the first environments so they are warm when their scenario starts; each start
    // then announces the one `jobs + lookahead` places further down the queue.
    let ahead = jobs + opts.lookahead;
    for &(ti, _) in queue.iter().take(ahead) {
        backend.prewarm(&tests[ti], 1);
    }

    let semaphore = Arc::new(Semaphore::new(jobs));
    let mut handles = Vec::with_capacity(queue.len());
    for (k, &(ti, si)) in queue.iter().enumerate() {
        let permit = tokio::select! {
            p = semaphore.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = cancel.cancelled() => {
                // Cancelled while waiting for a slot: the rest is reported as skipped below.
                handles.push((ti, None));
                for &(tj, _) in &queue[k + 1..] {
                    handles.push((tj, None));
                }
                break;
            }
        };
        if let Some(&(tn, _)) = queue.get(k + ahead) {
            backend.prewarm(&tests[tn], 1);
        }
        let test = tests[ti].clone();
        let test_deadline = *deadlines[ti].get_or_init(|| test.timeout.map(|t| Instant::now() + t));
        let retries = opts
            .retries
            .or(test.scenarios[si].retries)
            .or(test.retries)
            .unwrap_or(0);
        let job = ScenarioJob {
            test,
            index: si,
            test_deadline,
            retries,
            telemetry: opts.telemetry.clone(),
        };
        let backend = backend.clone();
        let events = events.clone();
        let cancel_run = cancel.clone();
        let fail_fast = opts.fail_fast;
        // A zero period would report without end: it means off.
        let slow_timeout = opts.slow_timeout.filter(|p| !p.is_zero());
        let handle = tokio::spawn(async move {
            let _permit = permit;
            let rx = cancel_run.subscribe();
            let sc = job.scenario();
            send(
                &events,
                RunEvent::ScenarioStarted {
                    test: job.test.name.clone(),
                    scenario: sc.name.clone(),
                    attempt: 1,
                },
            );
            let max_attempts = retries + 1;
            // The slow timer runs per attempt: a retry starts it again once its backoff is
            // over, as nextest does.
            let attempt_start = Mutex::new((1u32, Instant::now()));
            let current = || {
                *attempt_start
                    .lock()
                    .expect("never poisoned: no panic holds it")
            };
            let running = run_scenario(backend.as_ref(), &job, &rx, |failed| {
                let next = failed.attempt + 1;
                *attempt_start
                    .lock()
                    .expect("never poisoned: no panic holds it") =
                    (next, Instant::now() + executor::backoff(failed.attempt));
                send(
                    &events,
                    RunEvent::Retrying {
                        test: job.test.name.clone(),
                        scenario: sc.name.clone(),
                        failed: failed.clone(),
                        max_attempts,
                    },
                );
            });
            tokio::pin!(running);
            let mut periods = 0u32;
            let mut timed = current();
            let result = loop {
                // Each multiple of the slow timeout an attempt is still running at is reported
                // once; without a slow timeout this only awaits the scenario.
                let next = slow_timeout.map(|p| timed.1 + p * (periods + 1));
                tokio::select! {
                    r = &mut running => break r,
                    _ = sleep_until(next) => {
                        if current() != timed {
                            // A retry started meanwhile: time it from its own start.
                            timed = current();
                            periods = 0;
                            continue;
                        }
                        periods += 1;
                        send(
                            &events,
                            RunEvent::Slow {
                                test: job.test.name.clone(),
                                scenario: sc.name.clone(),
                                attempt: timed.0,
                                elapsed: slow_timeout.unwrap_or_default() * periods,
                            },
                        );
                    }
                }
            };
            if fail_fast && result.status.is_failure() {
                cancel_run.cancel("stopped by --fail-fast");
            } else if executor::is_backend_lost(&result) {
                // A lost daemon fails every scenario that follows: stop at once.
                cancel_run.cancel(BACKEND_LOST_REASON);
            }
            send(
                &events,
                RunEvent::ScenarioFinished {
                    test: job.test.name.clone(),
                    path: crate::results::display_path(&job.test.path),
                    result: result.clone(),
                    max_attempts,
                },
            );
            result
        });
        handles.push((ti, Some((si, handle))));
    }

    let mut per_test: Vec<Vec<Option<ScenarioResult>>> = tests
        .iter()
        .map(|t| vec![None; t.scenarios.len()])
        .collect();
    for (ti, h) in handles {
        if let Some((si, handle)) = h {
            let result = match handle.await {
                Ok(r) => r,
                Err(e) => error_result(&tests[ti], si, &format!("scenario task failed: {e}")),
            };
            per_test[ti][si] = Some(result);
        }
    }
    // Scenarios never started (cancelled) are reported as skipped.
    let per_test: Vec<Vec<ScenarioResult>> = per_test
        .into_iter()
        .zip(&tests)
        .map(|(slots, test)| {
            slots
                .into_iter()
                .enumerate()
                .map(|(si, slot)| {
                    slot.unwrap_or_else(|| {
                        let mut r =
                            error_result(test, si, "run cancelled before the scenario started");
                        r.status = Status::Skipped;
                        r
                    })
                })
                .collect()
        })
        .collect();

    for (test, scenarios) in tests.iter().zip(per_test) {
        let result = TestResult {
            name: test.name.clone(),
            path: crate::results::display_path(&test.path),
            tags: test.tags.clone(),
            status: test_status(&scenarios),
            duration_ms: scenarios.iter().map(|s| s.duration_ms).sum(),
            scenarios,
        };
        send(&events, RunEvent::TestFinished(result));
    }
}

/// A test's status from its scenarios: any failure fails it, else flaky, else passed; only
/// skipped scenarios make it skipped.
pub fn test_status(scenarios: &[ScenarioResult]) -> Status {
    let worst = scenarios
        .iter()
        .map(|s| s.status)
        .filter(|s| s.is_failure())
        .min();
    if let Some(s) = worst {
        return s;
    }
    if scenarios.iter().any(|s| s.status == Status::Flaky) {
        return Status::Flaky;
    }
    if !scenarios.is_empty() && scenarios.iter().all(|s| s.status == Status::Skipped) {
        return Status::Skipped;
    }
    Status::Passed
}

/// `aborted` of a run stopped because its backend went away.
pub const BACKEND_LOST_REASON: &str =
    "backend lost: the Docker daemon stopped answering during the run";

/// Whether `results` are those of a run its backend was lost in (exit 5).
pub fn backend_was_lost(results: &crate::results::RunResults) -> bool {
    results.aborted.as_deref() == Some(BACKEND_LOST_REASON)
}

/// After a run: when a scenario lost its backend, the scenarios the stop left unfinished
/// (skipped by the cancellation) are errors with the same cause, not skips. Returns whether
/// the backend was lost.
pub fn mark_backend_lost(tests: &mut [TestResult]) -> bool {
    let lost = tests
        .iter()
        .flat_map(|t| &t.scenarios)
        .any(executor::is_backend_lost);
    if !lost {
        return false;
    }
    for t in tests.iter_mut() {
        for sc in &mut t.scenarios {
            if sc.status == Status::Skipped {
                sc.status = Status::Error;
                sc.message = Some(format!(
                    "{}: the run stopped before this scenario finished",
                    executor::BACKEND_LOST
                ));
            }
        }
        t.status = test_status(&t.scenarios);
    }
    true
}

fn error_result(test: &TestSpec, si: usize, message: &str) -> ScenarioResult {
    let sc = &test.scenarios[si];
    ScenarioResult {
        message: Some(message.to_string()),
        ..ScenarioResult::new(sc.name.clone(), sc.line, Status::Error)
    }
}

/// Sleep until `at`, or forever when there is no `at`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn send(events: &Option<mpsc::UnboundedSender<RunEvent>>, event: RunEvent) {
    if let Some(tx) = events {
        // A closed receiver means nobody listens any more; the run itself goes on.
        let _ = tx.send(event);
    }
}

#[cfg(test)]
mod tests;
