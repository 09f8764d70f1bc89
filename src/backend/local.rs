//! Local backend: steps run as host processes, one temp directory per service.
//!
//! Environment scrubbed to `PATH`, `HOME` (the service's temp dir), `LANG=C.UTF-8`, then the
//! service env, then the step env. Every process gets its own session (setsid), so a timeout
//! kills the whole process group, not just the direct child. A service `cmd` is started as a
//! background process in its directory (killed on release); the readiness probe runs as a
//! process like any step. `image` is ignored here: that is what "local" means. So are the
//! isolation and publishing of `ports`: a service process listens on the host itself, so
//! port `N` is `127.0.0.1:N` and the step variables say exactly that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::capture::Capture;
use super::probe::{self, ProbeError};
use super::{Backend, BackendConfig, BackendError, Env, ExecOutput, ExecRequest};
use crate::results::{BackendKind, Phase};
use crate::suite::{ServiceSpec, TestSpec};

/// How long output readers may take to finish after the process group was killed (a
/// daemonised grandchild that escaped the group could hold the pipe open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

pub struct LocalBackend {
    cfg: BackendConfig,
}

impl LocalBackend {
    pub fn new(cfg: BackendConfig) -> Self {
        LocalBackend { cfg }
    }

    /// Run id this backend was created for.
    pub fn run_id(&self) -> &str {
        &self.cfg.run_id
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Local
    }

    async fn acquire(&self, test: &TestSpec) -> Result<Box<dyn Env>, BackendError> {
        let t = Instant::now();
        let mut services = BTreeMap::new();
        let mut env = LocalEnv {
            services: BTreeMap::new(),
            phases: BTreeMap::new(),
        };
        for svc in test.services.values() {
            let dir = tempfile::Builder::new()
                .prefix(&format!("clnrm-{}-", svc.id))
                .tempdir()
                .map_err(|e| service_err(&svc.id, format!("create temp dir: {e}")))?;
            services.insert(svc.id.clone(), (svc.clone(), dir));
        }
        env.phases.insert(Phase::Create, ms(t.elapsed()));
        // `depends_on`: services start in waves, each once the previous wave is ready.
        let waves = crate::suite::start_waves(&test.services)
            .unwrap_or_else(|| vec![test.services.keys().cloned().collect()]);
        let (mut start_ms, mut ready_ms) = (0.0, 0.0);
        for wave in waves {
            let t = Instant::now();
            for id in &wave {
                let Some((svc, dir)) = services.remove(id) else {
                    continue;
                };
                let main =
                    match &svc.cmd {
                        Some(argv) => {
                            let req = ExecRequest {
                                argv: argv.clone(),
                                env: BTreeMap::new(),
                                workdir: None,
                                timeout: Duration::MAX,
                            };
                            let mut cmd = command(&svc, dir.path(), &req)?;
                            cmd.stdout(Stdio::null()).stderr(Stdio::null());
                            Some(cmd.spawn().map_err(|e| {
                                service_err(id, format!("start `{}`: {e}", argv[0]))
                            })?)
                        }
                        None => None,
                    };
                env.services.insert(
                    id.clone(),
                    LocalService {
                        spec: svc,
                        dir,
                        main,
                    },
                );
            }
            start_ms += ms(t.elapsed());
            let t = Instant::now();
            for id in &wave {
                if let Some(s) = env.services.get(id) {
                    if let Some(probe) = &s.spec.ready {
                        wait_ready(s, probe).await?;
                    }
                }
            }
            ready_ms += ms(t.elapsed());
        }
        env.phases.insert(Phase::Start, start_ms);
        env.phases.insert(Phase::Ready, ready_ms);
        env.phases.insert(Phase::EnvWait, 0.0);
        Ok(Box::new(env))
    }

    async fn shutdown(&self) -> Result<(), BackendError> {
        // Environments own their directories and processes; nothing is pooled here.
        Ok(())
    }
}

struct LocalService {
    spec: ServiceSpec,
    dir: tempfile::TempDir,
    main: Option<Child>,
}

struct LocalEnv {
    services: BTreeMap<String, LocalService>,
    phases: BTreeMap<Phase, f64>,
}

#[async_trait]
impl Env for LocalEnv {
    async fn exec(&self, service: &str, req: &ExecRequest) -> Result<ExecOutput, BackendError> {
        let s = self
            .services
            .get(service)
            .ok_or_else(|| service_err(service, "no such service in this test".into()))?;
        run(&s.spec, s.dir.path(), req).await
    }

    fn phases(&self) -> BTreeMap<Phase, f64> {
        self.phases.clone()
    }

    fn ports(&self) -> Vec<crate::suite::PublishedPort> {
        self.services
            .values()
            .flat_map(|s| {
                s.spec.ports.iter().map(|&p| crate::suite::PublishedPort {
                    service: s.spec.id.clone(),
                    container_port: p,
                    host_port: p,
                    in_network: format!("127.0.0.1:{p}"),
                })
            })
            .collect()
    }

    async fn release(self: Box<Self>, _healthy: bool) -> Result<f64, BackendError> {
        let t = Instant::now();
        for (_, mut s) in self.services {
            if let Some(child) = s.main.as_mut() {
                kill_group(child.id());
                let _ = child.wait().await;
            }
            // Removing the directory is the release; report a failure, it would be a leak.
            s.dir
                .close()
                .map_err(|e| BackendError::Other(format!("remove temp dir: {e}")))?;
        }
        Ok(ms(t.elapsed()))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn service_err(service: &str, message: String) -> BackendError {
    BackendError::Service {
        service: service.to_string(),
        message,
    }
}

/// The process for `req`: scrubbed environment, cwd in the service dir, own session.
fn command(svc: &ServiceSpec, dir: &Path, req: &ExecRequest) -> Result<Command, BackendError> {
    let (prog, args) = req
        .argv
        .split_first()
        .ok_or_else(|| service_err(&svc.id, "empty argv".into()))?;
    let mut cmd = Command::new(prog);
    cmd.args(args).env_clear();
    cmd.env(
        "PATH",
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
    );
    cmd.env("HOME", dir).env("LANG", "C.UTF-8");
    cmd.envs(&svc.env).envs(&req.env);
    let workdir = req.workdir.as_deref().or(svc.workdir.as_deref());
    cmd.current_dir(resolve_workdir(dir, workdir));
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    // SAFETY: setsid is async-signal-safe and touches nothing but the child's own session.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// A relative workdir lives under the service dir; an absolute one is used as is.
fn resolve_workdir(dir: &Path, workdir: Option<&str>) -> PathBuf {
    match workdir {
        Some(w) if Path::new(w).is_absolute() => PathBuf::from(w),
        Some(w) => dir.join(w),
        None => dir.to_path_buf(),
    }
}

/// Kill the process group led by `pid` (the pid of a child started with setsid). The id
/// must be taken before the child is reaped: tokio forgets it afterwards. A pid is never
/// reused while a group of that id still exists, so this cannot hit a stranger.
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: plain kill(2) on the negative group id of our own child's session.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

async fn run(svc: &ServiceSpec, dir: &Path, req: &ExecRequest) -> Result<ExecOutput, BackendError> {
    let started = Instant::now();
    let mut cmd = command(svc, dir, req)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(w) = req.workdir.as_deref() {
        // A relative step workdir may not exist yet in a fresh temp dir; create it like a
        // container runtime would create WORKDIR.
        if !Path::new(w).is_absolute() {
            let _ = std::fs::create_dir_all(dir.join(w));
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| service_err(&svc.id, format!("spawn `{}`: {e}", req.argv[0])))?;
    let pid = child.id();
    let mut so = child.stdout.take().expect("stdout was piped");
    let mut se = child.stderr.take().expect("stderr was piped");
    let out_task = tokio::spawn(async move { drain(&mut so).await });
    let err_task = tokio::spawn(async move { drain(&mut se).await });
    let mut out = ExecOutput::default();
    match tokio::time::timeout(req.timeout, child.wait()).await {
        Ok(status) => {
            let status =
                status.map_err(|e| service_err(&svc.id, format!("wait for process: {e}")))?;
            // Killed by a signal: no exit code, like a container exec reports none.
            out.exit_code = status.code().map(i64::from);
            // Background children of the step may still hold the pipes; end them too.
            kill_group(pid);
        }
        Err(_) => {
            kill_group(pid);
            let _ = child.wait().await;
            out.timed_out = true;
        }
    }
    (out.stdout, out.stdout_cut) = tokio::time::timeout(DRAIN_GRACE, out_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    (out.stderr, out.stderr_cut) = tokio::time::timeout(DRAIN_GRACE, err_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    out.duration = started.elapsed();
    Ok(out)
}

/// Read a pipe to its end into a bounded capture: kept bytes and bytes dropped.
async fn drain(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> (Vec<u8>, u64) {
    let mut c = Capture::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => c.push(&buf[..n]),
        }
    }
    c.finish()
}

async fn wait_ready(
    s: &LocalService,
    probe: &crate::suite::ReadyProbe,
) -> Result<(), BackendError> {
    probe::wait_ready(&s.spec.id, probe, |left| async move {
        let req = ExecRequest {
            argv: probe.cmd.clone(),
            env: BTreeMap::new(),
            workdir: None,
            timeout: left,
        };
        run(&s.spec, s.dir.path(), &req)
            .await
            .map_err(|e| ProbeError::Retry(e.to_string()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::ReadyProbe;

    fn spec(services: Vec<ServiceSpec>) -> TestSpec {
        services
            .into_iter()
            .fold(TestSpec::named("local-test"), TestSpec::with_service)
    }

    fn host(id: &str) -> ServiceSpec {
        ServiceSpec {
            env: BTreeMap::from([("SVC_VAR".to_string(), "from-service".to_string())]),
            ..ServiceSpec::named(id)
        }
    }

    fn req(argv: &[&str]) -> ExecRequest {
        ExecRequest {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::new(),
            workdir: None,
            timeout: Duration::from_secs(10),
        }
    }

    fn backend() -> LocalBackend {
        LocalBackend::new(BackendConfig {
            run_id: "local-unit".into(),
            pull: false,
            pool_size: 2,
            otel_endpoint: None,
            container_defaults: Default::default(),
            reuse_all: false,
            step_transport: crate::backend::StepTransport::Auto,
        })
    }

    #[tokio::test]
    async fn exit_code_and_separate_streams() {
        let env = backend()
            .acquire(&spec(vec![host("h")]))
            .await
            .expect("acquire");
        let out = env
            .exec("h", &req(&["sh", "-c", "echo out; echo err >&2; exit 3"]))
            .await
            .expect("exec");
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert!(!out.timed_out);
        env.release(true).await.expect("release");
    }

    #[tokio::test]
    async fn ports_are_the_hosts_own() {
        let mut web = host("web");
        web.ports = vec![18080, 18081];
        let env = backend()
            .acquire(&spec(vec![web, host("other")]))
            .await
            .expect("acquire");
        let vars = crate::suite::port_vars(&env.ports());
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            [
                ("CLNRM_WEB_ADDR_18080", "127.0.0.1:18080"),
                ("CLNRM_WEB_ADDR_18081", "127.0.0.1:18081"),
                ("CLNRM_WEB_PORT_18080", "18080"),
                ("CLNRM_WEB_PORT_18081", "18081"),
                ("CLNRM_WEB_PUBLISHED_18080", "127.0.0.1:18080"),
                ("CLNRM_WEB_PUBLISHED_18081", "127.0.0.1:18081"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        env.release(true).await.expect("release");
    }

    #[tokio::test]
    async fn argv_is_not_joined() {
        let env = backend()
            .acquire(&spec(vec![host("h")]))
            .await
            .expect("acquire");
        let out = env
            .exec("h", &req(&["printf", "[%s]\n", "a b", "it's \"q\""]))
            .await
            .expect("exec");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[a b]\n[it's \"q\"]\n"
        );
        env.release(true).await.expect("release");
    }

    #[tokio::test]
    async fn environment_is_scrubbed_and_layered() {
        // A variable of this process that must not leak into steps.
        std::env::set_var("CLNRM_LEAK_CHECK", "leaked");
        let env = backend()
            .acquire(&spec(vec![host("h")]))
            .await
            .expect("acquire");
        let mut r = req(&["env"]);
        r.env.insert("STEP_VAR".into(), "from-step".into());
        let out = env.exec("h", &r).await.expect("exec");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut keys: Vec<&str> = text.lines().filter_map(|l| l.split('=').next()).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec!["HOME", "LANG", "PATH", "STEP_VAR", "SVC_VAR"]);
        assert!(text.contains("SVC_VAR=from-service\n"));
        assert!(text.contains("STEP_VAR=from-step\n"));
        assert!(text.contains("LANG=C.UTF-8\n"));
        env.release(true).await.expect("release");
    }

    #[tokio::test]
    async fn cwd_is_the_service_dir_and_relative_workdir_is_under_it() {
        let env = backend()
            .acquire(&spec(vec![host("h")]))
            .await
            .expect("acquire");
        let home = env
            .exec("h", &req(&["sh", "-c", "echo $HOME"]))
            .await
            .expect("exec");
        let pwd = env.exec("h", &req(&["pwd"])).await.expect("exec");
        assert_eq!(pwd.stdout, home.stdout);
        let home = String::from_utf8_lossy(&home.stdout).trim().to_string();
        assert!(Path::new(&home).is_dir());
        let mut r = req(&["pwd"]);
        r.workdir = Some("sub/dir".into());
        let sub = env.exec("h", &r).await.expect("exec");
        assert_eq!(
            String::from_utf8_lossy(&sub.stdout).trim(),
            format!("{home}/sub/dir")
        );
        let mut r = req(&["pwd"]);
        r.workdir = Some("/tmp".into());
        let abs = env.exec("h", &r).await.expect("exec");
        assert_eq!(abs.stdout, b"/tmp\n");
        env.release(true).await.expect("release");
        assert!(!Path::new(&home).exists(), "temp dir removed on release");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let env = backend()
            .acquire(&spec(vec![host("h")]))
            .await
            .expect("acquire");
        let marker = std::env::temp_dir().join(format!("clnrm-local-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let mut r = req(&[
            "sh",
            "-c",
            &format!(
                "(sleep 1; touch {}) & echo started; sleep 30",
                marker.display()
            ),
        ]);
        r.timeout = Duration::from_millis(300);
        let t = Instant::now();
        let out = env.exec("h", &r).await.expect("exec");
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert_eq!(out.stdout, b"started\n");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "took {:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !marker.exists(),
            "background child of the step survived the timeout"
        );
        env.release(false).await.expect("release");
    }

    #[tokio::test]
    async fn readiness_probe_waits_for_service_cmd() {
        let mut s = host("h");
        s.cmd = Some(vec![
            "sh".into(),
            "-c".into(),
            "sleep 0.3; touch ready; sleep 60".into(),
        ]);
        s.ready = Some(ReadyProbe {
            cmd: vec!["test".into(), "-f".into(), "ready".into()],
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
        });
        let env = backend()
            .acquire(&spec(vec![s.clone()]))
            .await
            .expect("acquire");
        assert!(
            env.phases()[&Phase::Ready] >= 250.0,
            "phases {:?}",
            env.phases()
        );
        env.release(true).await.expect("release");

        s.ready = Some(ReadyProbe {
            cmd: vec!["test".into(), "-f".into(), "never".into()],
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(200),
        });
        match backend().acquire(&spec(vec![s])).await {
            Err(BackendError::NotReady {
                service,
                timeout_ms,
                ..
            }) => {
                assert_eq!((service.as_str(), timeout_ms), ("h", 200));
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("probe of a missing file must not pass"),
        }
    }

    #[tokio::test]
    async fn depends_on_starts_a_service_after_its_dependency_is_ready() {
        let d = tempfile::tempdir().expect("tempdir");
        let (mark, seen) = (d.path().join("mark"), d.path().join("seen"));
        let probe = |path: &std::path::Path| ReadyProbe {
            cmd: vec!["test".into(), "-f".into(), path.display().to_string()],
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
        };
        let mut a = host("a");
        a.cmd = Some(vec![
            "sh".into(),
            "-c".into(),
            format!("sleep 0.3; touch {}; sleep 60", mark.display()),
        ]);
        a.ready = Some(probe(&mark));
        let mut b = host("b");
        // `b` reports ready only if `a` was ready when `b` started.
        b.cmd = Some(vec![
            "sh".into(),
            "-c".into(),
            format!(
                "test -f {} && touch {}; sleep 60",
                mark.display(),
                seen.display()
            ),
        ]);
        b.ready = Some(ReadyProbe {
            timeout: Duration::from_millis(800),
            ..probe(&seen)
        });
        b.depends_on = vec!["a".into()];
        let env = backend()
            .acquire(&spec(vec![a, b]))
            .await
            .expect("b started after a was ready");
        env.release(true).await.expect("release");
    }
}
