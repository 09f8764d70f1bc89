//! The Docker backend (bollard): pooled environments of started, ready containers.
//!
//! Every object carries the run labels (`clnrm.run`, `clnrm.pid`, `clnrm.host`,
//! `clnrm.test`). `connect` reaps leftovers of dead runs on this host, `shutdown` removes
//! everything of this run (pool, background removals, then a sweep by run label), and
//! [`clean_all`] removes every labelled object of any run.

mod agent;
mod create;
mod env;
mod error;
mod exec;
mod labels;
mod pool;
mod publish;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::future::join_all;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

pub use create::KEEP_ALIVE;
use create::{create_env, remove_env};
use env::DockerEnv;
use error::{api_error, status_of};
use labels::{is_dead_leftover, RunLabels};
use pool::{key_of_test, Pending, Pool, Take};

use super::{Backend, BackendConfig, BackendError, Env, StepTransport, LABEL_RUN};
use crate::results::BackendKind;
use crate::suite::TestSpec;

/// How long connecting and pinging may take before the daemon counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Objects removed by [`clean_all`] or by the reaping in [`DockerBackend::connect`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub containers: usize,
    pub networks: usize,
}

/// State shared by the backend, its environments and its background tasks.
pub(crate) struct Shared {
    docker: Docker,
    cfg: BackendConfig,
    labels: RunLabels,
    /// Image reference -> what the image says, `None` when it is not present (inspected
    /// once per image).
    images: tokio::sync::Mutex<HashMap<String, Option<agent::ImageFacts>>>,
    /// How steps reach containers (agent or exec, and why).
    agent: agent::AgentState,
    seq: AtomicU64,
    reuse_all: AtomicBool,
    /// The daemon's version, asked once.
    version: tokio::sync::OnceCell<Option<String>>,
    pool: Mutex<Pool>,
    /// Creations and removals running in the background; `shutdown` awaits them.
    tasks: Mutex<JoinSet<()>>,
}

impl Shared {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Fail with `ImageMissing` unless the image is present (or pulled with `--pull`);
    /// what the agent needs to know about it otherwise.
    async fn ensure_image(&self, image: &str) -> Result<agent::ImageFacts, BackendError> {
        let mut cache = self.images.lock().await;
        let facts = match cache.get(image) {
            Some(f) => f.clone(),
            None => {
                let facts = match self.inspect_image(image).await? {
                    Some(f) => Some(f),
                    None if self.cfg.pull => {
                        self.pull(image).await?;
                        self.inspect_image(image).await?
                    }
                    None => None,
                };
                cache.insert(image.to_string(), facts.clone());
                facts
            }
        };
        facts.ok_or_else(|| BackendError::ImageMissing {
            image: image.to_string(),
        })
    }

    async fn inspect_image(&self, image: &str) -> Result<Option<agent::ImageFacts>, BackendError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(agent::ImageFacts {
                entrypoint: i.config.and_then(|c| c.entrypoint).unwrap_or_default(),
                arch: i.architecture,
            })),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(api_error("inspect image", e)),
        }
    }

    async fn pull(&self, image: &str) -> Result<(), BackendError> {
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| BackendError::Other(format!("pull `{image}`: {e}")))?;
        }
        Ok(())
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().expect("task set lock poisoned");
        // Forget finished tasks so the set does not grow over a long watch session.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut);
    }

    /// Start creating an environment in the background. If nobody is waiting any more
    /// when it is ready (receiver dropped by shutdown or a cancelled acquire), it is removed.
    fn spawn_create(self: &Arc<Self>, test: &TestSpec, key: u64) -> Pending {
        let (tx, rx) = oneshot::channel();
        let me = Arc::clone(self);
        let name = test.name.clone();
        let services = test.services.clone();
        let reusable = self.reusable(test);
        self.spawn(async move {
            let r = create_env(&me, &name, &services, key, reusable).await;
            if let Err(Ok(parts)) = tx.send(r) {
                remove_env(&me.docker, &parts).await;
            }
        });
        rx
    }

    fn reusable(&self, test: &TestSpec) -> bool {
        self.reuse_all.load(Ordering::Relaxed) || test.services.values().all(|s| s.reuse)
    }

    fn remove_in_background(self: &Arc<Self>, parts: create::EnvParts) {
        let me = Arc::clone(self);
        self.spawn(async move { remove_env(&me.docker, &parts).await });
    }
}

/// Docker backend. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct DockerBackend {
    shared: Arc<Shared>,
    reaped: CleanReport,
}

impl DockerBackend {
    /// Connect (DOCKER_HOST or the default socket), negotiate the API version and ping.
    /// No daemon -> [`BackendError::Unavailable`]. Reaps leftovers of dead runs on this host
    /// (see [`DockerBackend::reaped`]).
    pub async fn connect(cfg: BackendConfig) -> Result<DockerBackend, BackendError> {
        let docker = connect_docker().await?;
        let reuse_all = cfg.reuse_all;
        let labels = RunLabels::for_this_process(&cfg.run_id);
        let reaped = remove_labelled(&docker, |l| is_dead_leftover(l, &labels.host)).await?;
        agent::AgentState::reap_dead_roots();
        let agent = agent::AgentState::new(cfg.step_transport, &cfg.run_id);
        Ok(DockerBackend {
            shared: Arc::new(Shared {
                docker,
                cfg,
                labels,
                images: tokio::sync::Mutex::new(HashMap::new()),
                agent,
                seq: AtomicU64::new(0),
                reuse_all: AtomicBool::new(reuse_all),
                version: tokio::sync::OnceCell::new(),
                pool: Mutex::new(Pool::default()),
                tasks: Mutex::new(JoinSet::new()),
            }),
            reaped,
        })
    }

    /// Watch mode: reuse healthy environments across runs for every test.
    pub fn set_reuse_all(&self, on: bool) {
        self.shared.reuse_all.store(on, Ordering::Relaxed);
    }

    /// How steps reach containers in environments created from now on (`--step-transport`).
    pub fn set_step_transport(&self, mode: StepTransport) {
        self.shared.agent.set_mode(mode);
    }

    /// Use `path` as the agent binary (default: `CLNRM_AGENT_BIN`, else the running clnrm
    /// when it is static).
    pub fn set_agent_binary(&self, path: &std::path::Path) {
        self.shared.agent.set_binary(path);
    }

    /// Leftovers of dead runs removed by `connect`.
    pub fn reaped(&self) -> CleanReport {
        self.reaped
    }
}

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Docker
    }

    async fn version(&self) -> Option<String> {
        self.shared
            .version
            .get_or_init(|| async { self.shared.docker.version().await.ok()?.version })
            .await
            .clone()
    }

    fn prewarm(&self, test: &TestSpec, count: usize) {
        let key = key_of_test(test);
        let mut pool = self.shared.pool.lock().expect("pool lock poisoned");
        if pool.is_closed() {
            return;
        }
        // A reusable environment comes back to the pool after each scenario: while one is
        // warm for this configuration, another would only be created to be thrown away.
        if self.shared.reusable(test) && pool.warm_for(key) > 0 {
            return;
        }
        let n = count.min(pool.room(self.shared.cfg.pool_size));
        for _ in 0..n {
            let rx = self.shared.spawn_create(test, key);
            pool.add_pending(key, rx);
        }
    }

    async fn acquire(&self, test: &TestSpec) -> Result<Box<dyn Env>, BackendError> {
        let t = Instant::now();
        let key = key_of_test(test);
        let parts = loop {
            // Either an idle environment or a creation to wait for (one already warming,
            // else a new one started now).
            let taken: Result<create::EnvParts, Pending> = {
                let mut pool = self.shared.pool.lock().expect("pool lock poisoned");
                if pool.is_closed() {
                    return Err(BackendError::Other("docker backend is shut down".into()));
                }
                match pool.take(key) {
                    Take::Idle(parts) => Ok(parts),
                    Take::Pending(rx) => Err(rx),
                    Take::Nothing => Err(self.shared.spawn_create(test, key)),
                }
            };
            match taken {
                // An idle env that served before may have died since (watch mode keeps
                // them across runs): check before handing it out.
                Ok(parts) if parts.used && !all_running(&self.shared.docker, &parts).await => {
                    self.shared.remove_in_background(parts);
                }
                Ok(parts) => break parts,
                Err(rx) => {
                    break rx.await.map_err(|_| {
                        BackendError::Other("environment creation was cancelled by shutdown".into())
                    })??
                }
            }
        };
        let wait_ms = t.elapsed().as_secs_f64() * 1000.0;
        Ok(Box::new(DockerEnv::new(
            Arc::clone(&self.shared),
            parts,
            wait_ms,
        )))
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        let idle = self.shared.pool.lock().expect("pool lock poisoned").drain();
        join_all(idle.iter().map(|p| remove_env(&self.shared.docker, p))).await;
        let mut tasks =
            std::mem::take(&mut *self.shared.tasks.lock().expect("task set lock poisoned"));
        while tasks.join_next().await.is_some() {}
        // Environments still held by callers, or left by a cancelled creation.
        let run = self.shared.labels.run_id.clone();
        let host = self.shared.labels.host.clone();
        // Own objects, and a second sweep for dead runs: creates a killed run still had in
        // flight when `connect` reaped may have landed since (they were not listed then).
        remove_labelled(&self.shared.docker, |l| {
            l.get(LABEL_RUN) == Some(&run) || is_dead_leftover(l, &host)
        })
        .await?;
        self.shared.agent.remove_root();
        Ok(())
    }
}

async fn all_running(docker: &Docker, parts: &create::EnvParts) -> bool {
    join_all(
        parts
            .containers
            .values()
            .map(|id| docker.inspect_container(id, None)),
    )
    .await
    .into_iter()
    .all(|r| r.is_ok_and(|c| c.state.and_then(|s| s.running) == Some(true)))
}

async fn connect_docker() -> Result<Docker, BackendError> {
    let unavailable = |e: String| BackendError::Unavailable(e);
    let docker = Docker::connect_with_defaults().map_err(|e| unavailable(e.to_string()))?;
    let fut = async {
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok::<_, BackendError>(docker)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| unavailable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
}

/// A network of the run's own for the telemetry receiver: its gateway is an address of this
/// host (on the network's bridge) that containers of every other bridge network reach,
/// internal ones included, through the host's input path, and that is not routed beyond the
/// host. Labelled like every environment, so `clnrm clean` and the start-up reaper remove it
/// if the run dies. Returns the gateway and the network id (remove it with
/// [`remove_network`]).
pub async fn telemetry_network(run_id: &str) -> Result<(std::net::IpAddr, String), BackendError> {
    let docker = connect_docker().await?;
    let labels = RunLabels::for_this_process(run_id);
    let name = format!("clnrm-{}-{}-otel", labels.run_id, labels.pid);
    let net = docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            internal: Some(true),
            labels: Some(labels.for_test("telemetry")),
            ..Default::default()
        })
        .await
        .map_err(|e| api_error("create network", e))?;
    let info = docker
        .inspect_network(
            &net.id,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .map_err(|e| api_error("inspect network", e));
    let configs = match info {
        Ok(i) => i.ipam.and_then(|i| i.config).unwrap_or_default(),
        Err(e) => {
            remove_network(&net.id).await;
            return Err(e);
        }
    };
    // Without an explicit `Gateway` the daemon uses the subnet's first address.
    let from_gateway = configs
        .iter()
        .filter_map(|c| c.gateway.as_deref())
        .find_map(|g| g.parse::<std::net::Ipv4Addr>().ok());
    let from_subnet = || {
        configs
            .iter()
            .filter_map(|c| c.subnet.as_deref())
            .find_map(|s| {
                let base: std::net::Ipv4Addr = s.split('/').next()?.parse().ok()?;
                Some(std::net::Ipv4Addr::from(u32::from(base) + 1))
            })
    };
    match from_gateway.or_else(from_subnet) {
        Some(ip) => Ok((std::net::IpAddr::V4(ip), net.id)),
        None => {
            remove_network(&net.id).await;
            Err(BackendError::Other(format!(
                "network `{name}` has no IPv4 subnet"
            )))
        }
    }
}

/// Remove a network clnrm created (best effort: the reaper removes leftovers by label).
pub async fn remove_network(id: &str) {
    if let Ok(docker) = connect_docker().await {
        let _ = docker.remove_network(id).await;
    }
}

/// Quick check used to pick a backend automatically.
pub async fn docker_available() -> bool {
    connect_docker().await.is_ok()
}

/// `clnrm clean`: remove every clnrm-labelled container and network, of any run.
pub async fn clean_all() -> Result<CleanReport, BackendError> {
    let docker = connect_docker().await?;
    let mut report = remove_labelled(&docker, |_| true).await?;
    // The agent socket directories of killed runs go with their containers.
    agent::AgentState::reap_dead_roots();
    if report.containers + report.networks > 0 {
        // A killed run's creates may still be in flight: sweep again once they settle.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let again = remove_labelled(&docker, |_| true).await?;
        report.containers += again.containers;
        report.networks += again.networks;
    }
    Ok(report)
}

/// Remove the labelled containers and networks of one run, whoever owns it.
pub async fn clean_run(run_id: &str) -> Result<CleanReport, BackendError> {
    let docker = connect_docker().await?;
    remove_labelled(&docker, |l| {
        l.get(LABEL_RUN).map(String::as_str) == Some(run_id)
    })
    .await
}

/// Remove every container, then every network, carrying `clnrm.run` whose labels satisfy
/// `pred`. Containers go first: a network with endpoints cannot be removed.
async fn remove_labelled(
    docker: &Docker,
    pred: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<CleanReport, BackendError> {
    let filters = HashMap::from([("label", vec![LABEL_RUN])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| api_error("list containers", e))?;
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    let doomed: Vec<String> = containers
        .into_iter()
        .filter(|c| c.labels.as_ref().is_some_and(&pred))
        .filter_map(|c| c.id)
        .collect();
    let removed = join_all(
        doomed
            .iter()
            .map(|id| docker.remove_container(id, Some(opts.clone()))),
    )
    .await
    .into_iter()
    // 404: removed concurrently by someone else, which is just as good.
    .filter(|r| {
        r.as_ref()
            .map_or_else(|e| status_of(e) == Some(404), |_| true)
    })
    .count();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| api_error("list networks", e))?;
    let doomed: Vec<String> = networks
        .into_iter()
        .filter(|n| n.labels.as_ref().is_some_and(&pred))
        .filter_map(|n| n.id)
        .collect();
    let nets = join_all(doomed.iter().map(|id| docker.remove_network(id)))
        .await
        .into_iter()
        .filter(|r| {
            r.as_ref()
                .map_or_else(|e| status_of(e) == Some(404), |_| true)
        })
        .count();
    Ok(CleanReport {
        containers: removed,
        networks: nets,
    })
}
