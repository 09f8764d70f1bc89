//! Execution backends: where the steps of a scenario run.
//!
//! The runner only sees [`Backend`] and [`Env`]. `docker` (bollard, pooled) is the default,
//! `local` runs steps as host processes, `fake` scripts results for unit tests of the runner.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::results::{BackendKind, Phase};
use crate::suite::TestSpec;

pub mod capture;
pub mod docker;
pub mod fake;
pub mod local;
pub(crate) mod probe;

pub use docker::clean_all;

/// Label keys put on every container and network clnrm creates.
pub const LABEL_RUN: &str = "clnrm.run";
pub const LABEL_PID: &str = "clnrm.pid";
pub const LABEL_TEST: &str = "clnrm.test";
pub const LABEL_HOST: &str = "clnrm.host";

/// Settings shared by all backends.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Unique id of this run (put in labels).
    pub run_id: String,
    /// Pull missing images (never implicit).
    pub pull: bool,
    /// Upper bound on environments kept warm or being warmed at once.
    pub pool_size: usize,
    /// OTLP endpoint of the run's telemetry receiver, as containers reach it: every
    /// environment then gets a network (to reach the host) and every service the `OTEL_*`
    /// variables it does not set itself.
    pub otel_endpoint: Option<crate::telemetry::Endpoints>,
    /// Limits of containers whose service sets none ([`ContainerDefaults::standard`]).
    pub container_defaults: ContainerDefaults,
    /// Keep every healthy environment warm for reuse (watch mode), not only `reuse = true`.
    pub reuse_all: bool,
    /// How steps reach Docker containers (`--step-transport`).
    pub step_transport: StepTransport,
}

/// How steps should reach Docker containers (`--step-transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepTransport {
    /// The agent where it can run, else one exec per step, with the reason recorded.
    #[default]
    Auto,
    /// The agent or an error.
    Agent,
    /// One exec per step.
    Exec,
}

/// A line of diagnostics on stderr when `CLNRM_DEBUG` is set (e.g. why the step agent is
/// not used).
pub fn debug(msg: impl std::fmt::Display) {
    if std::env::var_os("CLNRM_DEBUG").is_some_and(|v| !v.is_empty() && v != "0") {
        eprintln!("debug: {msg}");
    }
}

/// The one factory: open the backend of `kind`. Docker connects, negotiates the API and reaps
/// leftovers of dead runs; no daemon is [`BackendError::Unavailable`].
pub async fn open(kind: BackendKind, cfg: BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Docker => Ok(Arc::new(docker::DockerBackend::connect(cfg).await?)),
        BackendKind::Local => Ok(Arc::new(local::LocalBackend::new(cfg))),
        BackendKind::Fake => Err(BackendError::Other(
            "the fake backend is built by tests with a script".into(),
        )),
    }
}

/// Default memory and pids limits of service containers: a step that leaks memory or forks
/// without end hits its own container's limit, not the CI machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerDefaults {
    /// `None`: no memory limit.
    pub memory_bytes: Option<u64>,
    /// `None`: no pids limit.
    pub pids: Option<i64>,
}

impl ContainerDefaults {
    /// 2 GiB of memory, 1024 processes.
    pub const MEMORY_BYTES: u64 = 2 << 30;
    pub const PIDS: i64 = 1024;

    pub fn standard() -> ContainerDefaults {
        ContainerDefaults {
            memory_bytes: Some(Self::MEMORY_BYTES),
            pids: Some(Self::PIDS),
        }
    }

    /// From `.clnrm/config.toml` (`container_memory = "none"` / `container_pids = 0` lift a
    /// limit), already validated by the config loader.
    pub fn from_config(memory: Option<&str>, pids: Option<i64>) -> ContainerDefaults {
        let std = Self::standard();
        ContainerDefaults {
            memory_bytes: match memory {
                None => std.memory_bytes,
                Some("none") => None,
                Some(m) => crate::suite::parse_memory(m).or(std.memory_bytes),
            },
            pids: match pids {
                None => std.pids,
                Some(p) if p <= 0 => None,
                Some(p) => Some(p),
            },
        }
    }
}

impl Default for ContainerDefaults {
    fn default() -> Self {
        Self::standard()
    }
}

/// One command to execute in a service of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// Argv, passed intact (never joined into a string).
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    /// Killed and reported as timed out after this long.
    pub timeout: Duration,
}

/// Result of one exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// `None` when the process was killed on timeout or the code is unknown.
    pub exit_code: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
    /// Monotonic time around the exec itself.
    pub duration: Duration,
    /// Bytes dropped from the middle of stdout / stderr by the bounded capture
    /// ([`capture::Capture`]): `stdout` holds the head and the tail around them.
    pub stdout_cut: u64,
    pub stderr_cut: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No daemon answers (exit code 5).
    #[error("docker daemon unavailable: {0}")]
    Unavailable(String),
    #[error("image `{image}` is not available locally")]
    ImageMissing { image: String },
    #[error("service `{service}`: {message}")]
    Service { service: String, message: String },
    #[error("service `{service}` did not become ready within {timeout_ms} ms: {last}")]
    NotReady {
        service: String,
        timeout_ms: u64,
        last: String,
    },
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            BackendError::Unavailable(_) => Some(
                "start the Docker daemon (e.g. `sudo systemctl start docker`), point DOCKER_HOST at one, or run host-only tests with `--backend local`",
            ),
            BackendError::ImageMissing { .. } => Some(
                "build or load the image first (`docker build`, `docker load`), or pass `--pull` to fetch it from its registry",
            ),
            _ => None,
        }
    }
}

/// Exit code and output of a failed readiness-probe attempt, for the `NotReady` message.
pub(crate) fn describe_probe(out: &ExecOutput) -> String {
    let code = out
        .exit_code
        .map_or_else(|| "none".to_string(), |c| c.to_string());
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    format!("exit {code}: {} {}", so.trim(), se.trim())
        .trim_end()
        .to_string()
}

/// A place where scenarios run.
#[async_trait]
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// Version of what runs the environments (the Docker daemon's), for the run fingerprint.
    async fn version(&self) -> Option<String> {
        None
    }

    /// Announce that `count` environments for `test` will be acquired soon, so a pooling
    /// backend can create and start them ahead of demand. Must not block.
    fn prewarm(&self, _test: &TestSpec, _count: usize) {}

    /// An environment for one scenario of `test`: one started, ready instance of each service,
    /// on a network private to it. A fresh one unless every service has `reuse = true` (or
    /// the backend was told to reuse) and a healthy one is idle.
    async fn acquire(&self, test: &TestSpec) -> Result<Box<dyn Env>, BackendError>;

    /// Remove everything this backend created and still holds (pool drain). Idempotent.
    async fn shutdown(&self) -> Result<(), BackendError>;
}

/// The services of one scenario attempt.
#[async_trait]
pub trait Env: Send + Sync {
    async fn exec(&self, service: &str, req: &ExecRequest) -> Result<ExecOutput, BackendError>;

    /// Infrastructure phases spent on this environment, ms: `env_wait` (time the caller
    /// waited in `acquire`), `create`, `start`, `ready`. Zero for a reused environment.
    fn phases(&self) -> BTreeMap<Phase, f64>;

    /// Identity of this environment, as put in `clnrm.environment` of its services' resource
    /// attributes (`None`: the services got no such attribute).
    fn id(&self) -> Option<String> {
        None
    }

    /// Whether this environment was reused from an earlier scenario or run.
    fn reused(&self) -> bool {
        false
    }

    /// The `ports` of its services as published for this environment; every step gets them
    /// as variables ([`crate::suite::port_vars`]).
    fn ports(&self) -> Vec<crate::suite::PublishedPort> {
        Vec::new()
    }

    /// How steps reach its containers, and why not through the agent when they do not
    /// (`None` for backends without containers).
    fn transport(&self) -> Option<(crate::results::Transport, Option<String>)> {
        None
    }

    /// Hand it back. `healthy = false` (a failure or timeout happened) destroys it; a reusable
    /// healthy one goes back to the pool. Removal may continue in the background; the
    /// backend's `shutdown` waits for it. Returns the time spent before returning, ms.
    async fn release(self: Box<Self>, healthy: bool) -> Result<f64, BackendError>;
}
