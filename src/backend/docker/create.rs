//! Building one environment (network + one started, ready container per service) and
//! tearing it down again.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use futures_util::future::join_all;

use super::agent::{agent_launch, container_dir, wait_agent, Choice, ImageFacts, WaitError};
use super::error::api_error;
use super::exec::exec_in;
use super::publish::Published;
use super::Shared;
use crate::agent::AgentConn;
use crate::backend::probe::{self, ProbeError};
use crate::backend::{debug, BackendError, ExecOutput, ExecRequest};
use crate::results::{Phase, Transport};
use crate::suite::ServiceSpec;

/// Main process of a service without `cmd`: the imported test image (and many minimal
/// images) has no long-running default command, and exec needs a running container.
/// docker-init (`init = true`) is PID 1, so force-removal and SIGTERM end it at once.
pub const KEEP_ALIVE: [&str; 2] = ["sleep", "infinity"];

/// The docker objects of one environment.
#[derive(Debug)]
pub(crate) struct EnvParts {
    pub key: u64,
    pub network_id: String,
    /// Base name of the network and containers; the environment's id in telemetry.
    pub name: String,
    /// Service id -> container id.
    pub containers: BTreeMap<String, String>,
    /// `create`, `start`, `ready` wall times in ms.
    pub phases: BTreeMap<Phase, f64>,
    pub reusable: bool,
    /// Served a scenario already (reuse pool entries only).
    pub used: bool,
    /// `ports` of the services, published on 127.0.0.1 (boxed: most environments have none,
    /// and `EnvParts` moves through the pool by value).
    pub published: Box<Published>,
    /// Service id -> connection to the agent in its container (agent transport only).
    pub agents: BTreeMap<String, Arc<AgentConn>>,
    pub transport: Transport,
    /// Why steps do not go through the agent, when they do not.
    pub transport_note: Option<String>,
    /// Host directory of the agent sockets, removed with the environment.
    pub agent_dir: Option<PathBuf>,
}

impl EnvParts {
    pub(crate) fn new(key: u64, name: String, reusable: bool) -> EnvParts {
        EnvParts {
            key,
            network_id: String::new(),
            name,
            containers: BTreeMap::new(),
            phases: BTreeMap::new(),
            reusable,
            used: false,
            agents: BTreeMap::new(),
            transport: Transport::Exec,
            transport_note: None,
            agent_dir: None,
            published: Box::default(),
        }
    }
}

/// Why building an environment failed.
enum BuildError {
    /// The agent could not be started (a fallback to exec may help).
    Agent(String),
    Other(BackendError),
}

impl From<BackendError> for BuildError {
    fn from(e: BackendError) -> Self {
        BuildError::Other(e)
    }
}

/// The agent setup of one environment being built.
struct AgentSetup {
    bin: PathBuf,
    dir: PathBuf,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Create, start and probe every service of `test_name` concurrently. On failure everything
/// already created is removed before the error is returned.
pub(crate) async fn create_env(
    shared: &Shared,
    test_name: &str,
    services: &BTreeMap<String, ServiceSpec>,
    key: u64,
    reusable: bool,
) -> Result<EnvParts, BackendError> {
    let mut images = Vec::new();
    for svc in services.values() {
        match &svc.image {
            None => {
                return Err(BackendError::Service {
                    service: svc.id.clone(),
                    message: "no `image`; host services run only with `--backend local`".into(),
                })
            }
            Some(image) => images.push(shared.ensure_image(image).await?),
        }
    }
    let seq = shared.next_seq();
    let base = format!(
        "clnrm-{}-{}-{}",
        short(&shared.labels.run_id),
        shared.labels.pid,
        seq
    );
    let labels = shared.labels.for_test(test_name);
    let choice = shared.agent.choose(key, &images.iter().collect::<Vec<_>>());
    let note = match choice {
        Choice::Agent { bin, strict } => {
            let mut parts = EnvParts::new(key, base.clone(), reusable);
            let r = match shared.agent.env_dir(&seq.to_string()) {
                Ok(dir) => {
                    parts.agent_dir = Some(dir.clone());
                    let setup = AgentSetup { bin, dir };
                    build(
                        shared,
                        &base,
                        &labels,
                        services,
                        &images,
                        Some(&setup),
                        &mut parts,
                    )
                    .await
                }
                Err(e) => Err(BuildError::Agent(format!("socket directory: {e}"))),
            };
            match r {
                Ok(()) => {
                    parts.transport = Transport::Agent;
                    return Ok(parts);
                }
                Err(e) => {
                    remove_env(&shared.docker, &parts).await;
                    match e {
                        BuildError::Other(e) => return Err(e),
                        BuildError::Agent(reason) if strict => {
                            return Err(BackendError::Other(format!(
                                "step agent could not start (`--step-transport agent`): {reason}"
                            )))
                        }
                        BuildError::Agent(reason) => {
                            let reason = format!("the agent could not start: {reason}");
                            shared.agent.record_failure(key, &reason);
                            reason
                        }
                    }
                }
            }
        }
        Choice::Exec(reason) => {
            debug(format_args!("test `{test_name}`: steps use exec: {reason}"));
            reason
        }
    };
    // Names of its own for a retry after a failed agent start.
    let base = format!("{base}e");
    let mut parts = EnvParts::new(key, base.clone(), reusable);
    parts.transport_note = Some(note);
    match build(shared, &base, &labels, services, &images, None, &mut parts).await {
        Ok(()) => Ok(parts),
        Err(e) => {
            remove_env(&shared.docker, &parts).await;
            Err(match e {
                BuildError::Other(e) => e,
                BuildError::Agent(m) => BackendError::Other(m),
            })
        }
    }
}

async fn build(
    shared: &Shared,
    base: &str,
    labels: &HashMap<String, String>,
    services: &BTreeMap<String, ServiceSpec>,
    images: &[ImageFacts],
    agent: Option<&AgentSetup>,
    parts: &mut EnvParts,
) -> Result<(), BuildError> {
    // With the agent, a failure to create or start may come from it (its mount, its
    // binary): reported as an agent failure so that `auto` falls back to exec.
    let infra = |e: BackendError| match agent {
        Some(_) => BuildError::Agent(e.to_string()),
        None => BuildError::Other(e),
    };
    let docker = &shared.docker;
    let t = Instant::now();
    // A lone service without network access has no peer to talk to: it gets no network at
    // all (loopback only). That is as hermetic as an internal network and saves creating
    // and removing one per environment, about a third of an environment's daemon work.
    let otel = shared.cfg.otel_endpoint.as_ref();
    let network = if needs_network(services) || otel.is_some() {
        let net = docker
            .create_network(NetworkCreateRequest {
                name: base.to_string(),
                driver: Some("bridge".into()),
                internal: Some(!services.values().any(|s| s.network_access)),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| api_error("create network", e))?;
        parts.network_id = net.id;
        Some(base)
    } else {
        None
    };
    let mut bodies = Vec::new();
    for (i, (svc, image)) in services.values().zip(images).enumerate() {
        // Docker resolves a bind source only now: it must still be the path checked at load.
        for m in &svc.mounts {
            crate::suite::trust::recheck_mount(m).map_err(|message| {
                BuildError::Other(BackendError::Service {
                    service: svc.id.clone(),
                    message,
                })
            })?;
        }
        let launch = match agent {
            Some(a) => {
                let dir = container_dir(&a.dir, i)
                    .map_err(|e| BuildError::Agent(format!("socket directory: {e}")))?;
                Some((
                    i,
                    agent_launch(&a.bin, &dir, &image.entrypoint, svc.cmd.as_deref()),
                ))
            }
            None => None,
        };
        let mut body = container_body(
            svc,
            network,
            labels,
            launch.map(|l| l.1),
            &shared.cfg.container_defaults,
        );
        // The agent's steps inherit the container's environment, so OTEL_* reach them
        // as they reach an exec.
        if let (Some(endpoint), Some(env)) = (otel, body.env.as_mut()) {
            env.extend(crate::telemetry::handle::service_otel_env(
                svc, endpoint, base,
            ));
        }
        bodies.push((svc, body));
    }
    let created = join_all(bodies.into_iter().map(|(svc, body)| {
        let name = format!("{base}-{}", svc.id);
        async move {
            let opts = CreateContainerOptionsBuilder::default().name(&name).build();
            let r = docker.create_container(Some(opts), body).await;
            (svc.id.clone(), r)
        }
    }))
    .await;
    let mut first_err = None;
    for (id, r) in created {
        match r {
            Ok(c) => {
                parts.containers.insert(id, c.id);
            }
            Err(e) => {
                first_err.get_or_insert(BackendError::Service {
                    service: id,
                    message: format!("create container: {e}"),
                });
            }
        }
    }
    if let Some(e) = first_err {
        return Err(infra(e));
    }
    parts.phases.insert(Phase::Create, ms(t.elapsed()));

    // `depends_on`: services start in waves, each wave once the previous one is ready.
    // Without dependencies there is one wave: every service starts at once.
    let waves = crate::suite::start_waves(services)
        .unwrap_or_else(|| vec![services.keys().cloned().collect()]);
    let index: HashMap<&str, usize> = services
        .keys()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let (mut start_ms, mut ready_ms) = (0.0, 0.0);
    for wave in &waves {
        let t = Instant::now();
        let started = join_all(
            parts
                .containers
                .iter()
                .filter(|(id, _)| wave.contains(id))
                .map(|(id, cid)| async move {
                    let r = docker.start_container(cid, None).await;
                    (id.clone(), r)
                }),
        )
        .await;
        for (id, r) in started {
            if let Err(e) = r {
                return Err(infra(BackendError::Service {
                    service: id,
                    message: format!("start container: {e}"),
                }));
            }
        }
        if let Some(a) = agent {
            // The agents greet while the environment warms, off the steps' critical path.
            let greeted = join_all(
                parts
                    .containers
                    .iter()
                    .filter(|(id, _)| wave.contains(id))
                    .map(|(id, cid)| {
                        let i = index.get(id.as_str()).copied().unwrap_or_default();
                        let dir = a.dir.join(i.to_string());
                        async move { (id.clone(), wait_agent(docker, cid, &dir).await) }
                    }),
            )
            .await;
            for (id, r) in greeted {
                match r {
                    Ok(conn) => {
                        parts.agents.insert(id, Arc::new(conn));
                    }
                    Err(WaitError::NotStarted(e)) => {
                        return Err(BuildError::Agent(format!("service `{id}`: {e}")))
                    }
                    Err(WaitError::Exited(code)) => {
                        return Err(BuildError::Other(BackendError::Service {
                            service: id,
                            message: format!(
                                "container exited with code {code} before it was ready"
                            ),
                        }))
                    }
                }
            }
        }
        start_ms += ms(t.elapsed());

        let t = Instant::now();
        let agents = &parts.agents;
        let probes =
            join_all(
                services
                    .values()
                    .filter(|svc| wave.contains(&svc.id))
                    .filter_map(|svc| {
                        let probe = svc.ready.as_ref()?;
                        let cid = parts.containers.get(&svc.id)?.clone();
                        let agent = agents.get(&svc.id).map(Arc::clone);
                        Some(async move {
                            wait_ready(docker, &svc.id, &cid, probe, agent.as_deref()).await
                        })
                    }),
            )
            .await;
        probes.into_iter().collect::<Result<Vec<()>, _>>()?;
        ready_ms += ms(t.elapsed());
    }
    // Published once every service is up, so the mapping handed to steps is final; counted
    // as start time (a bind and one inspect per service with `ports`).
    let t = Instant::now();
    if let Some(net) = network {
        publish(docker, net, services, parts).await?;
    }
    start_ms += ms(t.elapsed());
    parts.phases.insert(Phase::Start, start_ms);
    parts.phases.insert(Phase::Ready, ready_ms);
    Ok(())
}

/// Publish the `ports` of every service on 127.0.0.1, forwarding to the container's address
/// on the environment network `net` (see [`super::publish`]).
async fn publish(
    docker: &Docker,
    net: &str,
    services: &BTreeMap<String, ServiceSpec>,
    parts: &mut EnvParts,
) -> Result<(), BackendError> {
    for svc in services.values().filter(|s| !s.ports.is_empty()) {
        let Some(cid) = parts.containers.get(&svc.id) else {
            continue;
        };
        let info = docker
            .inspect_container(cid, None)
            .await
            .map_err(|e| api_error("inspect container", e))?;
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(net))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .ok_or_else(|| BackendError::Service {
                service: svc.id.clone(),
                message: format!("no address on network `{net}` to publish `ports` from"),
            })?;
        parts.published.add(&svc.id, ip, &svc.ports).await?;
    }
    Ok(())
}

/// Whether an environment needs a network of its own: several services (they reach each
/// other by id), one that asked for access beyond the environment, or one with `ports` (they
/// are forwarded to its address on that network).
pub(crate) fn needs_network(services: &BTreeMap<String, ServiceSpec>) -> bool {
    services.len() > 1
        || services
            .values()
            .any(|s| s.network_access || !s.ports.is_empty())
}

/// `agent`: entrypoint, command and binds that make the agent the container's init.
fn container_body(
    svc: &ServiceSpec,
    network: Option<&str>,
    labels: &HashMap<String, String>,
    agent: Option<(Vec<String>, Vec<String>, Vec<String>)>,
    defaults: &crate::backend::ContainerDefaults,
) -> ContainerCreateBody {
    let mut binds = svc.mounts.clone();
    let (entrypoint, cmd) = match agent {
        Some((entrypoint, child, agent_binds)) => {
            binds.extend(agent_binds);
            (Some(entrypoint), child)
        }
        None => (
            None,
            svc.cmd
                .clone()
                .unwrap_or_else(|| KEEP_ALIVE.iter().map(|s| s.to_string()).collect()),
        ),
    };
    let init = entrypoint.is_none();
    let endpoint = EndpointSettings {
        aliases: Some(vec![svc.id.clone()]),
        ..Default::default()
    };
    ContainerCreateBody {
        image: svc.image.clone(),
        hostname: Some(svc.id.clone()),
        entrypoint,
        cmd: Some(cmd),
        env: Some(svc.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: svc.workdir.clone(),
        labels: Some(labels.clone()),
        tty: Some(false),
        host_config: Some(HostConfig {
            // The agent is the init itself; otherwise docker-init reaps and forwards signals.
            init: Some(init),
            privileged: Some(false),
            network_mode: Some(network.unwrap_or("none").to_string()),
            memory: svc
                .limits
                .memory_bytes
                .or(defaults.memory_bytes)
                .and_then(|m| i64::try_from(m).ok()),
            // milli-cpus -> nano-cpus.
            nano_cpus: svc
                .limits
                .cpus_milli
                .and_then(|c| i64::try_from(c.saturating_mul(1_000_000)).ok()),
            pids_limit: svc.limits.pids.or(defaults.pids),
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        networking_config: network.map(|n| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(n.to_string(), endpoint)])),
        }),
        ..Default::default()
    }
}

/// Exec the probe until it passes (see [`crate::backend::probe`]); a main process that
/// exited will never become ready, so that ends the wait at once.
async fn wait_ready(
    docker: &Docker,
    service: &str,
    container: &str,
    probe: &crate::suite::ReadyProbe,
    agent: Option<&AgentConn>,
) -> Result<(), BackendError> {
    probe::wait_ready(service, probe, |left| async move {
        match probe_once(docker, container, &probe.cmd, left, agent).await {
            Ok((out, _)) => Ok(out),
            // A main process that exited will never become ready: say so now instead of
            // retrying until the timeout.
            Err(e) => match exited(docker, container).await {
                Some(code) => Err(ProbeError::Fatal(BackendError::Service {
                    service: service.to_string(),
                    message: format!("container exited with code {code} before it was ready"),
                })),
                None => Err(ProbeError::Retry(e.to_string())),
            },
        }
    })
    .await
}

/// One probe attempt, through the agent when the environment has one.
async fn probe_once(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    timeout: Duration,
    agent: Option<&AgentConn>,
) -> Result<(ExecOutput, bool), BackendError> {
    match agent {
        Some(a) => {
            let req = ExecRequest {
                argv: cmd.to_vec(),
                env: BTreeMap::new(),
                workdir: None,
                timeout,
            };
            a.run(&req).await.map(|o| (o, true))
        }
        None => exec_in(docker, container, cmd, &BTreeMap::new(), None, timeout).await,
    }
}

/// The exit code of the container's main process, if it is no longer running.
pub(crate) async fn exited(docker: &Docker, container: &str) -> Option<i64> {
    let info = docker.inspect_container(container, None).await.ok()?;
    let state = info.state?;
    if state.running == Some(true) {
        None
    } else {
        Some(state.exit_code.unwrap_or(-1))
    }
}

/// Force-remove the containers concurrently (SIGKILL, no stop grace), then the network.
/// Errors are ignored on purpose: a gone object is the desired state, and the run-label
/// sweep in `shutdown` catches anything a transient error left behind.
pub(crate) async fn remove_env(docker: &Docker, parts: &EnvParts) {
    parts.published.close().await;
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    join_all(
        parts
            .containers
            .values()
            .map(|cid| docker.remove_container(cid, Some(opts.clone()))),
    )
    .await;
    if !parts.network_id.is_empty() {
        let _ = docker.remove_network(&parts.network_id).await;
    }
    if let Some(dir) = &parts.agent_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Run ids can be long; names only need to be unique together with the sequence number
/// (labels carry the full id).
fn short(run_id: &str) -> String {
    run_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect()
}
