//! One acquired Docker environment, as the runner sees it through [`Env`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::create::EnvParts;
use super::error::api_error;
use super::exec::exec_in;
use super::Shared;
use crate::backend::{BackendError, Env, ExecOutput, ExecRequest};
use crate::results::Phase;
use crate::results::Transport;

pub(crate) struct DockerEnv {
    shared: Arc<Shared>,
    parts: EnvParts,
    wait_ms: f64,
    reused: bool,
    /// Set when an exec timed out or failed: the container's state is unknown, so it must
    /// not serve another scenario even if the caller reports the scenario healthy.
    tainted: AtomicBool,
}

impl DockerEnv {
    pub fn new(shared: Arc<Shared>, parts: EnvParts, wait_ms: f64) -> Self {
        DockerEnv {
            shared,
            reused: parts.used,
            parts,
            wait_ms,
            tainted: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl Env for DockerEnv {
    fn id(&self) -> Option<String> {
        Some(self.parts.name.clone())
    }

    async fn exec(&self, service: &str, req: &ExecRequest) -> Result<ExecOutput, BackendError> {
        let container =
            self.parts
                .containers
                .get(service)
                .ok_or_else(|| BackendError::Service {
                    service: service.to_string(),
                    message: "no such service in this test".to_string(),
                })?;
        let r = match self.parts.agents.get(service) {
            Some(agent) => match agent.run(req).await {
                Ok(out) => Ok((out, true)),
                // A daemon that stopped takes its containers, and so the agent, with it: that
                // is a lost backend (exit 5), as it is for an exec, not a failing step.
                Err(e) => Err(match self.shared.docker.ping().await {
                    Err(p) => match api_error("ping after the step agent failed", p) {
                        lost @ BackendError::Unavailable(_) => lost,
                        _ => e,
                    },
                    Ok(_) => e,
                }),
            },
            None => {
                exec_in(
                    &self.shared.docker,
                    container,
                    &req.argv,
                    &req.env,
                    req.workdir.as_deref(),
                    req.timeout,
                )
                .await
            }
        };
        match r {
            Ok((out, clean)) => {
                if out.timed_out || !clean {
                    self.tainted.store(true, Ordering::Relaxed);
                }
                Ok(out)
            }
            Err(e) => {
                self.tainted.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn phases(&self) -> BTreeMap<Phase, f64> {
        let mut p = BTreeMap::new();
        for k in [Phase::Create, Phase::Start, Phase::Ready] {
            let v = if self.reused {
                0.0
            } else {
                self.parts.phases.get(&k).copied().unwrap_or(0.0)
            };
            p.insert(k, v);
        }
        p.insert(Phase::EnvWait, self.wait_ms);
        p
    }

    fn reused(&self) -> bool {
        self.reused
    }

    fn ports(&self) -> Vec<crate::suite::PublishedPort> {
        self.parts.published.ports.clone()
    }

    fn transport(&self) -> Option<(Transport, Option<String>)> {
        Some((self.parts.transport, self.parts.transport_note.clone()))
    }

    async fn release(self: Box<Self>, healthy: bool) -> Result<f64, BackendError> {
        let t = Instant::now();
        let DockerEnv {
            shared,
            mut parts,
            tainted,
            ..
        } = *self;
        let keep = healthy && parts.reusable && !tainted.load(Ordering::Relaxed);
        let parts = if keep {
            parts.used = true;
            let limit = shared.cfg.pool_size.max(1);
            let mut pool = shared.pool.lock().expect("pool lock poisoned");
            if let Some(old) = pool.evict_lru_for(parts.key, limit) {
                shared.remove_in_background(old);
            }
            pool.put_idle(parts, limit).err()
        } else {
            Some(parts)
        };
        if let Some(parts) = parts {
            shared.remove_in_background(parts);
        }
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }
}
