//! [`run_plan`]: execute a plan and collect its [`RunResults`] from the event stream. Every
//! run goes through it: `run`, `baseline record`, the gate's confirmation runs and each watch
//! cycle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::{schedule, Cancel, RunEvent, RunOptions};
use crate::backend::Backend;
use crate::plan::Plan;
use crate::results::{Backends, Fingerprint, Phase, RunResults, Shard, TestResult, SCHEMA_VERSION};

/// What identifies a run beyond its plan.
#[derive(Debug, Clone, Default)]
pub struct RunHeader {
    pub run_id: String,
    /// The machine, without the daemon version (the backend adds it).
    pub fingerprint: Fingerprint,
}

/// Builds the results of one run from its events, in plan order.
#[derive(Debug, Default)]
pub struct Collector {
    tests: Vec<TestResult>,
}

impl Collector {
    pub fn observe(&mut self, ev: &RunEvent) {
        if let RunEvent::TestFinished(t) = ev {
            self.tests.push(t.clone());
        }
    }

    pub fn into_tests(self) -> Vec<TestResult> {
        self.tests
    }
}

/// The results of a plan that does not run (invalid files): everything but the outcomes.
pub fn results_without_run(plan: &Plan, header: &RunHeader) -> RunResults {
    RunResults {
        schema_version: SCHEMA_VERSION,
        clnrm_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: header.run_id.clone(),
        started_at: now_rfc3339(),
        duration_ms: 0.0,
        backend: Backends::default(),
        fingerprint: header.fingerprint.clone(),
        suite_id: plan.suite_id.clone(),
        shard: plan.shard.map(|s| Shard {
            index: s.index,
            count: s.count,
        }),
        phases: plan.phases.clone(),
        load_errors: plan.load_errors.clone(),
        tests: Vec::new(),
        perf: None,
        aborted: None,
        empty_shard: plan.empty_shard,
        missing_shards: Vec::new(),
    }
}

/// Run every scenario of `plan` on `backend` and collect the results from the events, which
/// `on_event` also sees as they happen (the live display). `cancel` is the caller's switch
/// (signals); a fail-fast stop cancels only this run.
pub async fn run_plan(
    plan: &Plan,
    backend: &Arc<dyn Backend>,
    opts: &RunOptions,
    header: &RunHeader,
    cancel: &Cancel,
    mut on_event: impl FnMut(&RunEvent),
) -> RunResults {
    let mut results = results_without_run(plan, header);
    let t0 = Instant::now();
    results.backend = Backends::one(backend.kind());
    results.fingerprint.docker_version = backend.version().await;
    let run_cancel = cancel.child();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let scheduler = tokio::spawn(schedule(
        plan.tests.clone(),
        backend.clone(),
        opts.clone(),
        tx,
        run_cancel.clone(),
    ));
    let mut collector = Collector::default();
    while let Some(ev) = rx.recv().await {
        on_event(&ev);
        collector.observe(&ev);
    }
    // The channel closes when the scheduler is done; a panic in it loses only its own tests.
    let _ = scheduler.await;
    results.tests = collector.into_tests();
    results.aborted = run_cancel.reason().map(str::to_string);
    if results.aborted.as_deref() == Some(super::BACKEND_LOST_REASON) {
        super::mark_backend_lost(&mut results.tests);
    }
    let run_ms = ms_since(t0);
    results.phases.insert(Phase::Run, run_ms);
    results.duration_ms = run_ms + tool_ms(&plan.phases);
    results
}

/// Tool time spent before the run (discover, validate, plan).
fn tool_ms(phases: &BTreeMap<Phase, f64>) -> f64 {
    phases.values().sum()
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
