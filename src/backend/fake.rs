//! Fake backend for unit tests of the runner: a script decides each exec's result.
//!
//! Not a product backend: it exists so the scheduler, retries, timeouts and reports can be
//! tested without Docker, with exact, scripted outputs and durations.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Backend, BackendError, Env, ExecOutput, ExecRequest};
use crate::results::{BackendKind, Phase};
use crate::suite::TestSpec;

/// What one scripted exec returns.
#[derive(Debug, Clone, Default)]
pub struct FakeReply {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    /// Simulated run time; an exec longer than its timeout times out.
    pub delay: Duration,
}

type Script = dyn Fn(&str, &ExecRequest) -> Result<FakeReply, BackendError> + Send + Sync;

/// Counters the tests assert on.
#[derive(Debug, Default)]
pub struct FakeStats {
    pub acquired: AtomicUsize,
    pub released_healthy: AtomicUsize,
    pub released_unhealthy: AtomicUsize,
    pub prewarmed: AtomicUsize,
    pub execs: Mutex<Vec<(String, Vec<String>)>>,
}

pub struct FakeBackend {
    script: Arc<Script>,
    pub stats: Arc<FakeStats>,
    /// When set, `acquire` fails with this message (e.g. a missing image).
    pub acquire_error: Option<String>,
}

impl FakeBackend {
    pub fn new<F>(script: F) -> Self
    where
        F: Fn(&str, &ExecRequest) -> Result<FakeReply, BackendError> + Send + Sync + 'static,
    {
        FakeBackend {
            script: Arc::new(script),
            stats: Arc::new(FakeStats::default()),
            acquire_error: None,
        }
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fake
    }

    fn prewarm(&self, _test: &TestSpec, count: usize) {
        self.stats.prewarmed.fetch_add(count, Ordering::SeqCst);
    }

    async fn acquire(&self, _test: &TestSpec) -> Result<Box<dyn Env>, BackendError> {
        if let Some(image) = &self.acquire_error {
            return Err(BackendError::ImageMissing {
                image: image.clone(),
            });
        }
        self.stats.acquired.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(FakeEnv {
            script: self.script.clone(),
            stats: self.stats.clone(),
        }))
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

struct FakeEnv {
    script: Arc<Script>,
    stats: Arc<FakeStats>,
}

#[async_trait]
impl Env for FakeEnv {
    async fn exec(&self, service: &str, req: &ExecRequest) -> Result<ExecOutput, BackendError> {
        self.stats
            .execs
            .lock()
            .expect("fake stats lock is never poisoned")
            .push((service.to_string(), req.argv.clone()));
        let reply = (self.script)(service, req)?;
        if reply.delay > req.timeout {
            tokio::time::sleep(req.timeout).await;
            return Ok(ExecOutput {
                exit_code: None,
                timed_out: true,
                duration: req.timeout,
                ..Default::default()
            });
        }
        tokio::time::sleep(reply.delay).await;
        Ok(ExecOutput {
            exit_code: Some(reply.exit_code),
            stdout: reply.stdout.into_bytes(),
            stderr: reply.stderr.into_bytes(),
            timed_out: false,
            duration: reply.delay,
            ..Default::default()
        })
    }

    fn phases(&self) -> BTreeMap<Phase, f64> {
        BTreeMap::from([(Phase::Create, 1.0), (Phase::Start, 2.0)])
    }

    async fn release(self: Box<Self>, healthy: bool) -> Result<f64, BackendError> {
        let counter = if healthy {
            &self.stats.released_healthy
        } else {
            &self.stats.released_unhealthy
        };
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(0.5)
    }
}
