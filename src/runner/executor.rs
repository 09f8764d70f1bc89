//! Runs one scenario (all its attempts) on a backend environment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::backend::{Backend, BackendError, ExecRequest};
use crate::results::{
    clip_output, AttemptResult, EnvironmentUse, Phase, ReuseScope, ScenarioResult, Status,
    StepResult, OUTPUT_LIMIT,
};
use crate::runner::expect;
use crate::suite::{ScenarioSpec, TestSpec, DEFAULT_STEP_TIMEOUT};

/// The reuse scope of `test`'s environment, as the pool keys it: suite when every service
/// says `reuse = "suite"`, test when every service asks for reuse.
fn environment_use(test: &TestSpec, reused: bool) -> Option<EnvironmentUse> {
    let services = || test.services.values();
    if test.services.is_empty() || !services().all(|s| s.reuse) {
        return None;
    }
    let reuse = if services().all(|s| s.reuse_suite) {
        ReuseScope::Suite
    } else {
        ReuseScope::Test
    };
    Some(EnvironmentUse { reuse, reused })
}

/// Backoff before retry `n` (1-based): short, the point is to get past a transient hiccup.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * u64::from(attempt.min(5)))
}

/// What the scheduler gives one scenario.
pub struct ScenarioJob {
    pub test: Arc<TestSpec>,
    pub index: usize,
    /// Absolute deadline from the test's `[meta] timeout`, if any.
    pub test_deadline: Option<Instant>,
    pub retries: u32,
    /// Span collection for the run, if on.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

impl ScenarioJob {
    pub fn scenario(&self) -> &ScenarioSpec {
        &self.test.scenarios[self.index]
    }
}

/// Run a scenario with its retries. `cancel` flips to true on Ctrl-C / SIGTERM / fail-fast:
/// an in-flight exec is abandoned (the backend's shutdown removes its container).
pub async fn run_scenario<F>(
    backend: &dyn Backend,
    job: &ScenarioJob,
    cancel: &watch::Receiver<bool>,
    mut on_retry: F,
) -> ScenarioResult
where
    F: FnMut(&AttemptResult),
{
    let mut attempt = 1;
    let mut previous = Vec::new();
    loop {
        let mut result = run_attempt(backend, job, cancel, attempt).await;
        result.attempts = attempt;
        let passed = result.status == Status::Passed;
        if passed && !previous.is_empty() {
            result.status = Status::Flaky;
        }
        let cancelled = *cancel.borrow();
        if passed || attempt > job.retries || cancelled || result.status == Status::Skipped {
            result.previous_attempts = previous;
            return result;
        }
        let failed = AttemptResult::of(&result);
        on_retry(&failed);
        previous.push(failed);
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

async fn run_attempt(
    backend: &dyn Backend,
    job: &ScenarioJob,
    cancel: &watch::Receiver<bool>,
    attempt: u32,
) -> ScenarioResult {
    let sc = job.scenario();
    let started = Instant::now();
    let scenario_deadline = sc.timeout.map(|t| started + t);
    let deadline = match (scenario_deadline, job.test_deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut result = ScenarioResult::new(sc.name.clone(), sc.line, Status::Passed);
    if let Some(why) = sc.skip.as_ref().or(job.test.skip.as_ref()) {
        result.status = Status::Skipped;
        result.message = Some(format!("skipped: {why}"));
        result.steps = skipped_steps(job, 0);
        return result;
    }
    if *cancel.borrow() {
        result.status = Status::Skipped;
        result.message = Some("run cancelled before the scenario started".into());
        result.steps = skipped_steps(job, 0);
        return result;
    }

    let acquired = {
        let mut cancel = cancel.clone();
        tokio::select! {
            env = backend.acquire(&job.test) => Some(env),
            _ = cancel.wait_for(|c| *c) => None,
        }
    };
    let env = match acquired {
        None => {
            result.status = Status::Skipped;
            result.message = Some("run cancelled while waiting for containers".into());
            result.steps = skipped_steps(job, 0);
            result.duration_ms = ms(started.elapsed());
            return result;
        }
        Some(Err(e @ BackendError::Unavailable(_))) => {
            result.status = Status::Error;
            result.message = Some(backend_lost(&e));
            result.steps = skipped_steps(job, 0);
            result.duration_ms = ms(started.elapsed());
            return result;
        }
        Some(Err(e)) => {
            result.status = Status::Error;
            result.message = Some(match e.hint() {
                Some(h) => format!("{e}\nhint: {h}"),
                None => e.to_string(),
            });
            result.steps = skipped_steps(job, 0);
            result.duration_ms = ms(started.elapsed());
            return result;
        }
        Some(Ok(env)) => env,
    };
    result.phases = env.phases();
    if let Some((t, note)) = env.transport() {
        result.transport = Some(t);
        result.transport_note = note;
    }
    result.environment = environment_use(&job.test, env.reused());
    let trace = job
        .telemetry
        .as_ref()
        .map(|t| t.begin(&job.test, job.index, attempt, env.id()));

    // Published ports of the environment; a step's own `env` wins over them.
    result.published = env.ports();
    let port_vars = crate::suite::port_vars(&result.published);
    let mut healthy = true;
    for (i, step) in sc.steps.iter().enumerate() {
        let mut timeout = step.timeout.unwrap_or(DEFAULT_STEP_TIMEOUT);
        let mut capped_by_deadline = false;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left < timeout {
                timeout = left;
                capped_by_deadline = true;
            }
        }
        let mut req = ExecRequest {
            argv: step.run.to_argv(),
            env: port_vars
                .iter()
                .chain(&step.env)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            workdir: step.workdir.clone(),
            timeout,
        };
        let step_span = trace.as_ref().map(|t| t.start_step(step, &mut req.env));
        let mut step_result = StepResult {
            name: step.name.clone(),
            line: step.line,
            service: step.service.clone(),
            command: step.run.display(),
            status: Status::Passed,
            exit_code: None,
            duration_ms: 0.0,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            failures: Vec::new(),
        };
        let mut tries = 0;
        let exec = loop {
            let exec = {
                let mut cancel = cancel.clone();
                tokio::select! {
                    out = env.exec(&step.service, &req) => Some(out),
                    _ = cancel.wait_for(|c| *c) => None,
                }
            };
            // `retries` on a step: run it again while it misses its expectations (a timeout
            // is not retried: the scenario's deadline would be spent twice).
            let retry = tries < step.retries
                && matches!(&exec, Some(Ok(out)) if !out.timed_out
                    && !expect::check(&step.expect, out, timeout.as_millis() as u64).is_empty());
            if !retry {
                break exec;
            }
            tries += 1;
        };
        match exec {
            None => {
                healthy = false;
                step_result.status = Status::Skipped;
                result.status = Status::Skipped;
                result.message = Some(format!("run cancelled during step `{}`", step.name));
                result.steps.push(step_result);
                result.steps.extend(skipped_steps(job, i + 1));
                break;
            }
            Some(Err(e)) => {
                healthy = false;
                step_result.status = Status::Error;
                result.status = Status::Error;
                result.message = Some(match e {
                    BackendError::Unavailable(_) => backend_lost(&e),
                    _ => format!("step `{}`: {e}", step.name),
                });
                result.steps.push(step_result);
                result.steps.extend(skipped_steps(job, i + 1));
                break;
            }
            Some(Ok(out)) => {
                if let (Some(t), Some(span)) = (&trace, step_span) {
                    let ok = !out.timed_out && out.exit_code == Some(step.expect.exit_code);
                    t.end_step(step, span, ok, out.exit_code);
                }
                step_result.duration_ms = ms(out.duration);
                result.step_ms += step_result.duration_ms;
                step_result.exit_code = out.exit_code;
                let (so, so_cut) = clip_output(&out.stdout, out.stdout_cut, OUTPUT_LIMIT);
                let (se, se_cut) = clip_output(&out.stderr, out.stderr_cut, OUTPUT_LIMIT);
                step_result.stdout = so;
                step_result.stderr = se;
                step_result.stdout_truncated = so_cut;
                step_result.stderr_truncated = se_cut;
                step_result.failures =
                    expect::check(&step.expect, &out, timeout.as_millis() as u64);
                if out.timed_out {
                    healthy = false;
                    step_result.status = Status::TimedOut;
                    result.status = Status::TimedOut;
                    let what = if capped_by_deadline {
                        "scenario/test timeout"
                    } else {
                        "step timeout"
                    };
                    result.message = Some(format!(
                        "step `{}` killed after {} ms ({what})",
                        step.name,
                        timeout.as_millis()
                    ));
                    result.steps.push(step_result);
                    result.steps.extend(skipped_steps(job, i + 1));
                    break;
                }
                if !step_result.failures.is_empty() {
                    step_result.status = Status::Failed;
                    if !step.continue_on_failure {
                        result.status = Status::Failed;
                        result.message = Some(format!(
                            "step `{}` ({}:{}): {}",
                            step.name,
                            job.test.path.display(),
                            step.line,
                            step_result
                                .failures
                                .iter()
                                .map(|f| f.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        ));
                        healthy = false;
                        result.steps.push(step_result);
                        result.steps.extend(skipped_steps(job, i + 1));
                        break;
                    }
                }
                result.steps.push(step_result);
            }
        }
    }
    if let Some(t) = trace {
        let ok = result.status == Status::Passed;
        let outcome = t.finish(sc, ok).await;
        crate::telemetry::handle::apply(&job.test, sc, outcome, &mut result);
        if result.status == Status::Failed {
            healthy = false;
        }
    }
    match env.release(healthy).await {
        Ok(cleanup_ms) => {
            result.phases.insert(Phase::Cleanup, cleanup_ms);
        }
        Err(e) => {
            // The scenario's verdict stands; a cleanup problem is still worth surfacing.
            let note = format!("cleanup failed: {e}");
            result.message = Some(match result.message.take() {
                Some(m) => format!("{m}; {note}"),
                None => note,
            });
        }
    }
    result.duration_ms = ms(started.elapsed());
    result
}

fn skipped_steps(job: &ScenarioJob, from: usize) -> Vec<StepResult> {
    job.scenario().steps[from..]
        .iter()
        .map(|s| StepResult {
            name: s.name.clone(),
            line: s.line,
            service: s.service.clone(),
            command: s.run.display(),
            status: Status::Skipped,
            exit_code: None,
            duration_ms: 0.0,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            failures: Vec::new(),
        })
        .collect()
}

/// Message prefix of a scenario ended by the loss of its backend (the daemon went away): an
/// infrastructure failure, not a test failure. The runner stops the run on it and `run`
/// exits 5.
pub const BACKEND_LOST: &str = "backend lost";

fn backend_lost(e: &BackendError) -> String {
    format!("{BACKEND_LOST}: {e}")
}

/// Whether a scenario ended because its backend went away.
pub fn is_backend_lost(r: &ScenarioResult) -> bool {
    r.status == Status::Error
        && r.message
            .as_deref()
            .is_some_and(|m| m.starts_with(BACKEND_LOST))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
