//! Docker backend latency: (a) raw bollard exec of `true` in a warm container vs a step
//! through `Env::exec` on a pooled environment, with one exec per step and through the
//! in-container agent (a static clnrm: `CLNRM_AGENT_BIN`, else `scripts/agent-bin.sh`); (d) time to first exec of a fresh
//! environment with and without pre-warming; and the raw create / start / remove costs, so
//! the next optimisation aims at the largest part.
//!
//! Needs a daemon and `clnrm-test/busybox:latest` (scripts/test-image.sh). Run with
//! `cargo bench --bench exec -- --warm-up-time 1 --measurement-time 5`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;
use clnrm::backend::docker::DockerBackend;
use clnrm::backend::{Backend, BackendConfig, ExecRequest, StepTransport};
use clnrm::results::Transport;
use clnrm::suite::{Determinism, Dialect, Limits, PerfSpec, ServiceSpec, TestSpec};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use futures_util::StreamExt;
use tokio::runtime::Runtime;

const IMAGE: &str = "clnrm-test/busybox:latest";

fn run_id() -> String {
    format!("bench-{}", std::process::id())
}

fn labels() -> HashMap<String, String> {
    HashMap::from([
        ("clnrm.run".to_string(), run_id()),
        ("clnrm.pid".to_string(), std::process::id().to_string()),
    ])
}

fn test_spec() -> TestSpec {
    let svc = ServiceSpec {
        depends_on: Vec::new(),
        id: "box".into(),
        image: Some(IMAGE.into()),
        cmd: None,
        env: BTreeMap::new(),
        workdir: None,
        limits: Limits::default(),
        ready: None,
        reuse: false,
        reuse_suite: false,
        mounts: vec![],
        network_access: false,
        ports: vec![],
        line: 1,
    };
    TestSpec {
        skip: None,
        report: Default::default(),
        path: PathBuf::from("bench.clnrm.toml"),
        name: "bench".into(),
        description: None,
        tags: vec![],
        timeout: None,
        retries: None,
        services: BTreeMap::from([("box".to_string(), svc)]),
        scenarios: vec![],
        perf: PerfSpec::default(),
        determinism: Determinism::default(),
        expect: Default::default(),
        dialect: Dialect::Current,
        content_hash: String::new(),
    }
}

fn true_req() -> ExecRequest {
    ExecRequest {
        argv: vec!["true".into()],
        env: BTreeMap::new(),
        workdir: None,
        timeout: Duration::from_secs(30),
    }
}

/// The minimal raw-API exec: create, start attached, drain, inspect for the exit code.
async fn raw_exec(docker: &Docker, container: &str) {
    let opts = CreateExecOptions::<String> {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let id = docker
        .create_exec(container, opts)
        .await
        .expect("create exec")
        .id;
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&id, None).await.expect("start exec")
    {
        while let Some(Ok(LogOutput::StdOut { .. } | LogOutput::StdErr { .. })) =
            output.next().await
        {}
    }
    let code = docker.inspect_exec(&id).await.expect("inspect").exit_code;
    assert_eq!(code, Some(0));
}

async fn raw_create(docker: &Docker) -> String {
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        labels: Some(labels()),
        host_config: Some(HostConfig {
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(None, body)
        .await
        .expect("create")
        .id
}

/// An internal network like the one each environment gets.
async fn raw_network(docker: &Docker) -> String {
    let req = NetworkCreateRequest {
        name: format!(
            "{}-{}",
            run_id(),
            std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos())
        ),
        internal: Some(true),
        labels: Some(labels()),
        ..Default::default()
    };
    docker.create_network(req).await.expect("create network").id
}

/// One network + container lifecycle as an environment goes through; returns the time of
/// `phase` only.
async fn lifecycle(docker: &Docker, phase: &str) -> Duration {
    let mut timed = Duration::ZERO;
    let mut step = |name: &str, t: Instant| {
        if name == phase {
            timed = t.elapsed();
        }
    };
    let t = Instant::now();
    let net = raw_network(docker).await;
    step("network_create", t);
    let t = Instant::now();
    let id = raw_create(docker).await;
    step("create", t);
    let t = Instant::now();
    docker.start_container(&id, None).await.expect("start");
    step("start", t);
    let t = Instant::now();
    raw_remove(docker, &id).await;
    step("remove", t);
    let t = Instant::now();
    docker.remove_network(&net).await.expect("remove network");
    step("network_remove", t);
    timed
}

async fn raw_remove(docker: &Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    docker
        .remove_container(id, Some(opts))
        .await
        .expect("remove");
}

/// The static clnrm the agent runs as.
fn agent_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CLNRM_AGENT_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/agent-bin.sh"))
        .env("CLNRM_AGENT_TARGET_DIR", root.join("target/agent-static"))
        .output()
        .expect("run scripts/agent-bin.sh");
    assert!(out.status.success(), "scripts/agent-bin.sh failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn benches(c: &mut Criterion) {
    let rt = Runtime::new().expect("tokio runtime");
    let docker = rt.block_on(async {
        Docker::connect_with_defaults()
            .expect("docker client")
            .negotiate_version()
            .await
            .expect("daemon answers")
    });
    let backend = rt.block_on(async {
        DockerBackend::connect(BackendConfig {
            run_id: run_id(),
            pull: false,
            pool_size: 4,
            step_transport: StepTransport::Exec,
            otel_endpoint: None,
            container_defaults: Default::default(),
            reuse_all: false,
        })
        .await
        .expect("backend")
    });
    let spec = test_spec();

    // (a) exec floor vs a step on a pooled environment.
    let mut g = c.benchmark_group("exec_true");
    g.sample_size(30);
    let warm = rt.block_on(async {
        let id = raw_create(&docker).await;
        docker.start_container(&id, None).await.expect("start");
        id
    });
    g.bench_function("raw_bollard", |b| {
        b.iter(|| rt.block_on(raw_exec(&docker, &warm)))
    });
    let env = rt.block_on(backend.acquire(&spec)).expect("acquire");
    g.bench_function("clnrm_env", |b| {
        b.iter(|| {
            rt.block_on(async {
                let out = env.exec("box", &true_req()).await.expect("exec");
                assert_eq!(out.exit_code, Some(0));
            })
        })
    });
    rt.block_on(env.release(false)).expect("release");
    let agent_backend = rt.block_on(async {
        DockerBackend::connect(BackendConfig {
            run_id: format!("{}-agent", run_id()),
            pull: false,
            pool_size: 4,
            step_transport: StepTransport::Agent,
            otel_endpoint: None,
            container_defaults: Default::default(),
            reuse_all: false,
        })
        .await
        .expect("backend")
    });
    agent_backend.set_agent_binary(&agent_bin());
    let env = rt.block_on(agent_backend.acquire(&spec)).expect("acquire");
    assert_eq!(env.transport().map(|t| t.0), Some(Transport::Agent));
    g.bench_function("clnrm_agent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let out = env.exec("box", &true_req()).await.expect("exec");
                assert_eq!(out.exit_code, Some(0));
            })
        })
    });
    g.finish();
    rt.block_on(env.release(false)).expect("release");
    rt.block_on(agent_backend.shutdown()).expect("shutdown");

    // Raw lifecycle phases, each timed alone (the rest of the lifecycle runs untimed).
    let mut g = c.benchmark_group("raw_lifecycle");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    for phase in [
        "network_create",
        "create",
        "start",
        "remove",
        "network_remove",
    ] {
        g.bench_function(phase, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += lifecycle(&docker, phase).await;
                    }
                    total
                })
            })
        });
    }
    g.finish();

    // (d) acquire + first exec of a fresh environment.
    let mut g = c.benchmark_group("first_exec");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("cold", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let env = backend.acquire(&spec).await.expect("acquire");
                    env.exec("box", &true_req()).await.expect("exec");
                    total += t.elapsed();
                    env.release(false).await.expect("release");
                }
                total
            })
        })
    });
    g.bench_function("prewarmed", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    backend.prewarm(&spec, 1);
                    // The runner pre-warms while earlier scenarios run; give it that time
                    // (generous: create + start take over a second on a loaded machine).
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    let t = Instant::now();
                    let env = backend.acquire(&spec).await.expect("acquire");
                    env.exec("box", &true_req()).await.expect("exec");
                    total += t.elapsed();
                    env.release(false).await.expect("release");
                }
                total
            })
        })
    });
    g.finish();

    rt.block_on(async {
        raw_remove(&docker, &warm).await;
        backend.shutdown().await.expect("shutdown");
    });
}

criterion_group!(exec, benches);
criterion_main!(exec);
