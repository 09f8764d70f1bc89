//! Real-daemon tests of the Docker backend (not ignored: CI runs scripts/ensure-docker.sh
//! and scripts/test-image.sh first, and `ensure_test_image` builds the image if missing).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command as Proc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clnrm::backend::capture::{CAPTURE_HEAD, CAPTURE_TAIL};
use clnrm::backend::docker::{clean_run, docker_available, DockerBackend};
use clnrm::backend::{Backend, BackendConfig, BackendError, Env, ExecRequest, StepTransport};
use clnrm::results::{Phase, Transport};
use tokio::sync::Mutex;

use clnrm::suite::{Limits, ReadyProbe, ServiceSpec, TestSpec};

mod support;
use support::{agent_bin, ensure_test_image, text, IMAGE};

/// Connects are serialised: each one reaps dead leftovers, and the reaping test holds this
/// from planting its leftovers until its own connect has counted them.
static CONNECT: Mutex<()> = Mutex::const_new(());

async fn backend(run_id: &str) -> DockerBackend {
    let _g = CONNECT.lock().await;
    connect(run_id).await
}

async fn connect(run_id: &str) -> DockerBackend {
    ensure_test_image();
    let cfg = BackendConfig {
        run_id: run_id.to_string(),
        pull: false,
        pool_size: 4,
        otel_endpoint: None,
        container_defaults: Default::default(),
        reuse_all: false,
        step_transport: StepTransport::Auto,
    };
    DockerBackend::connect(cfg)
        .await
        .expect("docker daemon answers")
}

/// A backend whose environments use transport `t` (`Agent`: the agent or an error).
async fn backend_for(run_id: &str, t: StepTransport) -> DockerBackend {
    let b = backend(run_id).await;
    b.set_step_transport(t);
    if t == StepTransport::Agent {
        b.set_agent_binary(&agent_bin());
    }
    b
}

/// Asserts the transport an environment actually uses.
trait Checked {
    fn checked(self, t: StepTransport) -> Self;
}

impl Checked for Box<dyn Env> {
    fn checked(self, t: StepTransport) -> Self {
        let want = match t {
            StepTransport::Agent => Transport::Agent,
            _ => Transport::Exec,
        };
        let got = self.transport().expect("docker reports its transport");
        assert_eq!(got.0, want, "transport (note: {:?})", got.1);
        self
    }
}

/// Run an async test body once per step transport: same expectations both ways.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn exec() {
                super::$name(super::StepTransport::Exec).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn agent() {
                super::$name(super::StepTransport::Agent).await
            }
        }
    };
}

fn run_id(name: &str) -> String {
    format!("t-{name}-{}", std::process::id())
}

fn svc(id: &str) -> ServiceSpec {
    ServiceSpec::named(id).with_image(IMAGE)
}

fn spec(name: &str, services: Vec<ServiceSpec>) -> TestSpec {
    services
        .into_iter()
        .fold(TestSpec::named(name), TestSpec::with_service)
}

fn req(argv: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::new(),
        workdir: None,
        timeout: Duration::from_secs(20),
    }
}

/// Ids of containers and networks still labelled with this run.
fn leftovers(run: &str) -> (String, String) {
    let filter = format!("label=clnrm.run={run}");
    let ps = Proc::new("docker")
        .args(["ps", "-aq", "--filter", &filter])
        .output()
        .expect("docker ps");
    let nets = Proc::new("docker")
        .args(["network", "ls", "-q", "--filter", &filter])
        .output()
        .expect("docker network ls");
    (text(&ps.stdout), text(&nets.stdout))
}

async fn finish(b: DockerBackend, run: &str) {
    b.shutdown().await.expect("shutdown");
    assert_eq!(
        leftovers(run),
        (String::new(), String::new()),
        "leftovers of {run}"
    );
    // Idempotent.
    b.shutdown().await.expect("second shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_is_detected() {
    assert!(docker_available().await);
}

async fn step_runs_in_its_named_service(t: StepTransport) {
    let run = run_id(&format!("named-{t:?}"));
    let b = backend_for(&run, t).await;
    let env = b
        .acquire(&spec("named", vec![svc("alpha"), svc("beta")]))
        .await
        .expect("acquire")
        .checked(t);
    let host = |s: &'static str| {
        let env = &env;
        async move { text(&env.exec(s, &req(&["hostname"])).await.unwrap().stdout) }
    };
    assert_eq!(host("alpha").await, "alpha\n");
    assert_eq!(host("beta").await, "beta\n");
    let touch = env
        .exec("alpha", &req(&["touch", "/tmp/only-alpha"]))
        .await
        .unwrap();
    assert_eq!(touch.exit_code, Some(0));
    let probe = req(&["test", "-f", "/tmp/only-alpha"]);
    let a = env.exec("alpha", &probe).await.unwrap();
    let b2 = env.exec("beta", &probe).await.unwrap();
    assert_eq!((a.exit_code, b2.exit_code), (Some(0), Some(1)));
    match env.exec("gamma", &req(&["true"])).await {
        Err(BackendError::Service { service, .. }) => assert_eq!(service, "gamma"),
        other => panic!("unknown service must be an error, got {other:?}"),
    }
    let phases = env.phases();
    assert!(
        phases[&Phase::Create] > 0.0 && phases[&Phase::Start] > 0.0,
        "{phases:?}"
    );
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(step_runs_in_its_named_service);

async fn argv_exit_codes_streams_env_and_workdir(t: StepTransport) {
    let run = run_id(&format!("exec-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut s = svc("box");
    s.env.insert("SVC_VAR".into(), "svc value".into());
    s.workdir = Some("/tmp".into());
    let env = b
        .acquire(&spec("exec", vec![s]))
        .await
        .expect("acquire")
        .checked(t);

    let argv = ["printf", "[%s]\\n", "a b", "it's \"quoted\"", " "];
    let out = env.exec("box", &req(&argv)).await.unwrap();
    assert_eq!(text(&out.stdout), "[a b]\n[it's \"quoted\"]\n[ ]\n");

    let out = env
        .exec("box", &req(&["sh", "-c", "exit 3"]))
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.timed_out), (Some(3), false));

    let both = req(&["sh", "-c", "echo to-out; echo to-err >&2"]);
    let out = env.exec("box", &both).await.unwrap();
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");

    let mut r = req(&["sh", "-c", "echo \"$SVC_VAR|$STEP_VAR|$(pwd)\""]);
    r.env.insert("STEP_VAR".into(), "step = value".into());
    let out = env.exec("box", &r).await.unwrap();
    assert_eq!(text(&out.stdout), "svc value|step = value|/tmp\n");
    r.workdir = Some("/etc".into());
    let out = env.exec("box", &r).await.unwrap();
    assert_eq!(text(&out.stdout), "svc value|step = value|/etc\n");
    assert!(out.duration > Duration::ZERO);

    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(argv_exit_codes_streams_env_and_workdir);

async fn timeout_kills_the_step_and_reports_it(t: StepTransport) {
    let run = run_id(&format!("timeout-{t:?}"));
    let b = backend_for(&run, t).await;
    let env = b
        .acquire(&spec("timeout", vec![svc("box")]))
        .await
        .expect("acquire")
        .checked(t);
    let mut r = req(&["sh", "-c", "echo started; sleep 47; echo never"]);
    r.timeout = Duration::from_secs(1);
    let t = Instant::now();
    let out = env.exec("box", &r).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(text(&out.stdout), "started\n");
    // The step's process tree is gone, not merely abandoned.
    let ps = env.exec("box", &req(&["ps", "-o", "args"])).await.unwrap();
    assert!(
        !text(&ps.stdout).contains("sleep 47"),
        "still running:\n{}",
        text(&ps.stdout)
    );
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(timeout_kills_the_step_and_reports_it);

async fn services_talk_over_the_test_network(t: StepTransport) {
    let run = run_id(&format!("net-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut server = svc("server");
    let script = "mkdir -p /www && echo hello-from-server > /www/index.html \
                  && exec httpd -f -p 8080 -h /www";
    server.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
    server.ready = Some(ReadyProbe {
        cmd: ["wget", "-q", "-O-", "http://127.0.0.1:8080/"]
            .map(String::from)
            .to_vec(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
    });
    let env = b
        .acquire(&spec("net", vec![server, svc("client")]))
        .await
        .expect("acquire")
        .checked(t);
    let get = req(&["wget", "-q", "-O-", "http://server:8080/index.html"]);
    let out = env.exec("client", &get).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello-from-server\n");
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(services_talk_over_the_test_network);

/// Listening TCP sockets on `port` from /proc/net/tcp and tcp6, as `(local address hex, ...)`.
fn listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            let Some((addr, p)) = local.rsplit_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(p, 16).ok() == Some(port) {
                out.push(addr.to_string());
            }
        }
    }
    out
}

/// GET / over a plain TCP connection to 127.0.0.1:`port`.
fn http_get(port: u16) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

async fn ports_are_published_on_loopback_only_while_the_env_lives(t: StepTransport) {
    let run = run_id(&format!("ports-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut web = svc("web-1");
    let script = "mkdir -p /www && echo hello-from-web > /www/index.html \
                  && exec httpd -f -p 8080 -h /www";
    web.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
    web.ready = Some(ReadyProbe {
        cmd: ["wget", "-q", "-O-", "http://127.0.0.1:8080/"]
            .map(String::from)
            .to_vec(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(10),
    });
    web.ports = vec![8080];
    // A lone service with `ports` still gets the environment's internal network.
    let env = b.acquire(&spec("ports", vec![web])).await.expect("acquire");
    let ports = env.ports();
    assert_eq!(ports.len(), 1, "{ports:?}");
    let p = &ports[0];
    assert_eq!(
        (p.service.as_str(), p.container_port, p.in_network.as_str()),
        ("web-1", 8080, "web-1:8080")
    );
    let host_port = p.host_port;
    // Reachable from this machine while the environment lives...
    let body = tokio::task::spawn_blocking(move || http_get(host_port))
        .await
        .unwrap()
        .expect("published port answers");
    assert!(body.ends_with("hello-from-web\n"), "{body}");
    // ...bound to 127.0.0.1 only (0100007F in /proc/net/tcp), never to every address.
    assert_eq!(listeners(host_port), ["0100007F"]);
    // The variables a step gets.
    let vars = clnrm::suite::port_vars(&ports);
    assert_eq!(vars["CLNRM_WEB_1_ADDR_8080"], "web-1:8080");
    assert_eq!(vars["CLNRM_WEB_1_PORT_8080"], host_port.to_string());
    assert_eq!(
        vars["CLNRM_WEB_1_PUBLISHED_8080"],
        format!("127.0.0.1:{host_port}")
    );
    // The environment network stays internal: the test gets no access beyond it.
    let internal = inspect_run(&run, "network", "{{.Internal}}");
    assert_eq!(internal.trim(), "true");
    env.release(true).await.expect("release");
    finish(b, &run).await;
    // Nothing stays published.
    assert!(listeners(host_port).is_empty());
    assert!(std::net::TcpStream::connect(("127.0.0.1", host_port)).is_err());
}
both!(ports_are_published_on_loopback_only_while_the_env_lives);

async fn readiness_probe_waits_and_times_out(t: StepTransport) {
    let run = run_id(&format!("ready-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut s = svc("slow");
    let script = "sleep 1; touch /tmp/ready; exec sleep infinity";
    s.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
    s.ready = Some(ReadyProbe {
        cmd: ["test", "-f", "/tmp/ready"].map(String::from).to_vec(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(15),
    });
    let env = b
        .acquire(&spec("ready", vec![s.clone()]))
        .await
        .expect("acquire")
        .checked(t);
    let ready_ms = env.phases()[&Phase::Ready];
    assert!(
        ready_ms >= 700.0,
        "ready after {ready_ms} ms, before the file existed?"
    );
    let out = env
        .exec("slow", &req(&["test", "-f", "/tmp/ready"]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0));
    env.release(true).await.expect("release");

    s.ready = Some(ReadyProbe {
        cmd: ["sh", "-c", "echo not yet; exit 1"]
            .map(String::from)
            .to_vec(),
        interval: Duration::from_millis(100),
        // Long enough for a few probe execs even on a loaded machine.
        timeout: Duration::from_millis(2500),
    });
    match b.acquire(&spec("ready", vec![s])).await {
        Err(BackendError::NotReady {
            service,
            timeout_ms,
            last,
        }) => {
            assert_eq!((service.as_str(), timeout_ms), ("slow", 2500));
            assert!(last.contains("not yet"), "{last}");
        }
        Err(e) => panic!("expected NotReady, got {e}"),
        Ok(_) => panic!("a failing probe must not pass"),
    }
    finish(b, &run).await;
}
both!(readiness_probe_waits_and_times_out);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_and_host_service_are_clear_errors() {
    let run = run_id("images");
    let b = backend(&run).await;
    let mut s = svc("x");
    s.image = Some("clnrm-test/does-not-exist:1".into());
    for _ in 0..2 {
        // The second time the answer comes from the cache: same error.
        match b.acquire(&spec("images", vec![s.clone()])).await {
            Err(BackendError::ImageMissing { image }) => {
                assert_eq!(image, "clnrm-test/does-not-exist:1")
            }
            Err(e) => panic!("expected ImageMissing, got {e}"),
            Ok(_) => panic!("missing image must fail"),
        }
    }
    s.image = None;
    match b.acquire(&spec("images", vec![s])).await {
        Err(e @ BackendError::Service { .. }) => assert_eq!(
            e.to_string(),
            "service `x`: no `image`; host services run only with `--backend local`"
        ),
        Err(e) => panic!("expected Service error, got {e}"),
        Ok(_) => panic!("host service must fail on docker"),
    }
    finish(b, &run).await;
}

async fn prewarmed_env_is_ready_without_waiting_and_reuse_keeps_state(t: StepTransport) {
    let run = run_id(&format!("pool-{t:?}"));
    let b = backend_for(&run, t).await;
    let fresh = spec("pool", vec![svc("box")]);
    b.prewarm(&fresh, 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let env = b.acquire(&fresh).await.expect("acquire").checked(t);
    assert!(env.phases()[&Phase::EnvWait] < 50.0, "{:?}", env.phases());
    assert!(!env.reused());
    env.exec("box", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    env.release(true).await.expect("release");
    // Not reusable: the next one is the second pre-warmed env, without the mark.
    let env = b.acquire(&fresh).await.expect("acquire").checked(t);
    let out = env
        .exec("box", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(1)));
    env.release(true).await.expect("release");

    let mut r = svc("keep");
    r.reuse = true;
    let reusable = spec("pool-reuse", vec![r]);
    let env = b.acquire(&reusable).await.expect("acquire").checked(t);
    env.exec("keep", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    env.release(true).await.expect("release");
    let env = b.acquire(&reusable).await.expect("acquire").checked(t);
    let out = env
        .exec("keep", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (true, Some(0)));
    assert_eq!(env.phases()[&Phase::Create], 0.0);
    // An unhealthy release destroys it: the next one is fresh.
    env.release(false).await.expect("release");
    let env = b.acquire(&reusable).await.expect("acquire").checked(t);
    let out = env
        .exec("keep", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(1)));
    // Still held, plus one warming, at shutdown: both removed.
    b.prewarm(&fresh, 1);
    b.shutdown().await.expect("shutdown");
    assert!(b.acquire(&fresh).await.is_err(), "acquire after shutdown");
    finish(b, &run).await;
    drop(env);
}
both!(prewarmed_env_is_ready_without_waiting_and_reuse_keeps_state);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_dead_process_are_reaped_by_the_next_connect() {
    ensure_test_image();
    let guard = CONNECT.lock().await;
    let dead_run = run_id("dead");
    // A pid that existed and is gone now.
    let mut child = Proc::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait true");
    let host = text(&Proc::new("hostname").output().expect("hostname").stdout)
        .trim()
        .to_string();
    let labels = [
        format!("clnrm.run={dead_run}"),
        format!("clnrm.pid={dead_pid}"),
        format!("clnrm.host={host}"),
        "clnrm.test=dead".to_string(),
    ];
    let mut net = Proc::new("docker");
    net.args(["network", "create", "--internal"]);
    let mut run = Proc::new("docker");
    run.args(["run", "-d", "--init"]);
    for l in &labels {
        net.args(["--label", l]);
        run.args(["--label", l]);
    }
    let net_name = format!("clnrm-{dead_run}");
    assert!(net.arg(&net_name).status().unwrap().success());
    assert!(run
        .args([IMAGE, "sleep", "infinity"])
        .status()
        .unwrap()
        .success());
    assert_ne!(leftovers(&dead_run).0, "");
    assert_ne!(leftovers(&dead_run).1, "");

    let me = run_id("reaper");
    let b = connect(&me).await;
    drop(guard);
    let reaped = b.reaped();
    assert!(reaped.containers >= 1 && reaped.networks >= 1, "{reaped:?}");
    assert_eq!(leftovers(&dead_run), (String::new(), String::new()));
    finish(b, &me).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_removes_live_runs_too() {
    ensure_test_image();
    let other = run_id("clean");
    // Owned by a live process (this one), so connect would not reap it; clean does.
    let label = format!("clnrm.run={other}");
    let st = Proc::new("docker")
        .args([
            "run", "-d", "--init", "--label", &label, IMAGE, "sleep", "infinity",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let st = Proc::new("docker")
        .args([
            "network",
            "create",
            "--label",
            &label,
            &format!("clnrm-{other}"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // `clean_all` would also remove objects of concurrent tests on this shared daemon, so
    // the test uses the run-scoped variant; both share `remove_labelled`.
    let report = clean_run(&other).await.expect("clean");
    assert_eq!((report.containers, report.networks), (1, 1));
    assert_eq!(leftovers(&other), (String::new(), String::new()));
}

fn inspect_run(run: &str, what: &str, format: &str) -> String {
    let filter = format!("label=clnrm.run={run}");
    let ls_args: &[&str] = if what == "container" {
        &["ps", "-q", "--filter", &filter]
    } else {
        &["network", "ls", "-q", "--filter", &filter]
    };
    let ids = text(&Proc::new("docker").args(ls_args).output().unwrap().stdout);
    let id = ids.lines().next().expect("one object of the run");
    let out = Proc::new("docker")
        .args([what, "inspect", "--format", format, id])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_labels_and_isolation_are_applied() {
    let run = run_id("limits");
    // docker-init and no extra mounts: the exec transport (the agent adds both).
    let b = backend_for(&run, StepTransport::Exec).await;
    let mut s = svc("box");
    s.limits = Limits {
        memory_bytes: Some(64 * 1024 * 1024),
        cpus_milli: Some(500),
        pids: Some(64),
    };
    let env = b.acquire(&spec("limits", vec![s])).await.expect("acquire");
    let host = inspect_run(
        &run,
        "container",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} \
         {{.HostConfig.Privileged}} {{.HostConfig.Init}} {{len .Mounts}} \
         {{index .Config.Labels \"clnrm.test\"}} {{index .Config.Labels \"clnrm.pid\"}}",
    );
    assert_eq!(
        host,
        format!(
            "67108864 500000000 64 false true 0 limits {}",
            std::process::id()
        )
    );
    // A lone service has no peer: no network at all, loopback only.
    assert_eq!(
        inspect_run(&run, "container", "{{.HostConfig.NetworkMode}}"),
        "none"
    );
    assert_eq!(
        leftovers(&run).1.trim(),
        "",
        "no network for a lone service"
    );
    env.release(false).await.expect("release");
    // Several services share a network of their own, internal unless one asks for access.
    let env = b
        .acquire(&spec("pair", vec![svc("a"), svc("b")]))
        .await
        .expect("acquire");
    assert_eq!(inspect_run(&run, "network", "{{.Internal}}"), "true");
    env.release(false).await.expect("release");
    finish(b, &run).await;
}

async fn reuse_all_keeps_any_healthy_env_and_timeouts_taint_it(t: StepTransport) {
    let run = run_id(&format!("reuseall-{t:?}"));
    let b = backend_for(&run, t).await;
    b.set_reuse_all(true);
    let ts = spec("reuseall", vec![svc("box")]);
    let env = b.acquire(&ts).await.expect("acquire").checked(t);
    env.exec("box", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    env.release(true).await.expect("release");
    let env = b.acquire(&ts).await.expect("acquire").checked(t);
    assert!(env.reused());
    // A timed-out step leaves the container in an unknown state: even a "healthy" release
    // must not hand it out again.
    let mut slow = req(&["sleep", "30"]);
    slow.timeout = Duration::from_millis(300);
    assert!(env.exec("box", &slow).await.unwrap().timed_out);
    env.release(true).await.expect("release");
    let env = b.acquire(&ts).await.expect("acquire").checked(t);
    let out = env
        .exec("box", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(1)));
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(reuse_all_keeps_any_healthy_env_and_timeouts_taint_it);

async fn a_service_that_exits_fails_fast_instead_of_waiting_for_readiness(t: StepTransport) {
    let run = run_id(&format!("exits-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut s = svc("dies");
    s.cmd = Some(["sh", "-c", "exit 7"].map(String::from).to_vec());
    s.ready = Some(ReadyProbe {
        cmd: vec!["true".into()],
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(30),
    });
    let t = Instant::now();
    match b.acquire(&spec("exits", vec![s])).await {
        Err(BackendError::Service { service, message }) => {
            assert_eq!(service, "dies");
            assert_eq!(message, "container exited with code 7 before it was ready");
        }
        Err(e) => panic!("expected a Service error, got {e}"),
        Ok(_) => panic!("an exited service cannot be ready"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t.elapsed()
    );
    finish(b, &run).await;
}
both!(a_service_that_exits_fails_fast_instead_of_waiting_for_readiness);

async fn a_reusable_env_that_died_while_idle_is_replaced(t: StepTransport) {
    let run = run_id(&format!("died-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut s = svc("box");
    s.reuse = true;
    let ts = spec("died", vec![s]);
    let env = b.acquire(&ts).await.expect("acquire").checked(t);
    env.release(true).await.expect("release");
    let filter = format!("label=clnrm.run={run}");
    let ids = text(
        &Proc::new("docker")
            .args(["ps", "-q", "--filter", &filter])
            .output()
            .unwrap()
            .stdout,
    );
    let id = ids.trim();
    assert!(Proc::new("docker")
        .args(["kill", id])
        .status()
        .unwrap()
        .success());
    let env = b.acquire(&ts).await.expect("acquire").checked(t);
    let out = env.exec("box", &req(&["true"])).await.unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(0)));
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(a_reusable_env_that_died_while_idle_is_replaced);

/// The id of the one running container of `run` (for `docker stop` / `kill`).
fn container_of(run: &str) -> String {
    let filter = format!("label=clnrm.run={run}");
    let ids = text(
        &Proc::new("docker")
            .args(["ps", "-q", "--filter", &filter])
            .output()
            .unwrap()
            .stdout,
    );
    ids.lines().next().expect("a running container").to_string()
}

async fn the_process_context_is_the_containers(t: StepTransport) {
    let run = run_id(&format!("context-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut s = svc("box");
    s.env.insert("SVC_VAR".into(), "from service".into());
    s.env.insert("BOTH".into(), "service".into());
    s.workdir = Some("/tmp".into());
    let env = b
        .acquire(&spec("context", vec![s]))
        .await
        .expect("acquire")
        .checked(t);
    let mut r = req(&["env"]);
    r.env.insert("BOTH".into(), "step".into());
    r.env.insert("STEP_VAR".into(), "a=b c".into());
    let out = env.exec("box", &r).await.unwrap();
    let mut vars: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "BOTH=step",
            "HOME=/root",
            "HOSTNAME=box",
            "PATH=/bin",
            "STEP_VAR=a=b c",
            "SVC_VAR=from service"
        ]
    );
    let out = env
        .exec("box", &req(&["sh", "-c", "id; pwd"]))
        .await
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "uid=0(root) gid=0(root) groups=0(root)\n/tmp\n"
    );
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(the_process_context_is_the_containers);

async fn exit_codes_signals_and_commands_that_cannot_start(t: StepTransport) {
    let run = run_id(&format!("codes-{t:?}"));
    let b = backend_for(&run, t).await;
    let env = b
        .acquire(&spec("codes", vec![svc("box")]))
        .await
        .expect("acquire")
        .checked(t);
    let code = |argv: &'static [&'static str]| {
        let env = &env;
        async move { env.exec("box", &req(argv)).await.unwrap().exit_code }
    };
    assert_eq!(code(&["sh", "-c", "exit 255"]).await, Some(255));
    assert_eq!(code(&["sh", "-c", "kill -9 $$"]).await, Some(137));
    assert_eq!(code(&["sh", "-c", "kill -TERM $$"]).await, Some(143));
    assert_eq!(code(&["no-such-command"]).await, Some(126));
    assert_eq!(code(&["/etc/passwd"]).await, Some(126));
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(exit_codes_signals_and_commands_that_cannot_start);

async fn output_is_capped_per_stream(t: StepTransport) {
    let run = run_id(&format!("cap-{t:?}"));
    let b = backend_for(&run, t).await;
    let env = b
        .acquire(&spec("cap", vec![svc("box")]))
        .await
        .expect("acquire")
        .checked(t);
    let big = req(&[
        "sh",
        "-c",
        "yes | head -c 3000000; printf END; echo tail >&2",
    ]);
    let out = env.exec("box", &big).await.unwrap();
    assert_eq!(out.exit_code, Some(0));
    // Head and tail are kept, the middle is counted: the same on both transports.
    let kept = CAPTURE_HEAD + CAPTURE_TAIL;
    assert_eq!(out.stdout.len(), kept);
    assert_eq!(out.stdout_cut, 3_000_003 - kept as u64);
    assert!(out.stdout.starts_with(b"y\ny\n"));
    assert!(out.stdout.ends_with(b"y\nEND"));
    assert_eq!((text(&out.stderr).as_str(), out.stderr_cut), ("tail\n", 0));
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(output_is_capped_per_stream);

async fn background_processes_and_order_behave_like_exec(t: StepTransport) {
    let run = run_id(&format!("bg-{t:?}"));
    let b = backend_for(&run, t).await;
    let env = b
        .acquire(&spec("bg", vec![svc("box")]))
        .await
        .expect("acquire")
        .checked(t);
    // A detached background process does not hold the step, and outlives it.
    let mut r = req(&["sh", "-c", "sleep 41 >/dev/null 2>&1 & echo started"]);
    r.timeout = Duration::from_secs(5);
    let out = env.exec("box", &r).await.unwrap();
    assert_eq!((out.exit_code, out.timed_out), (Some(0), false));
    assert_eq!(text(&out.stdout), "started\n");
    let ps = env.exec("box", &req(&["ps", "-o", "args"])).await.unwrap();
    assert!(
        text(&ps.stdout).contains("sleep 41"),
        "{}",
        text(&ps.stdout)
    );
    // One that keeps the output open is waited for, as the exec's stream is.
    let r = req(&["sh", "-c", "(sleep 1; echo late) & echo early"]);
    let out = env.exec("box", &r).await.unwrap();
    assert_eq!(text(&out.stdout), "early\nlate\n");
    for i in 0..20 {
        let r = req(&["sh", "-c", &format!("echo {i} >> /tmp/order")]);
        assert_eq!(env.exec("box", &r).await.unwrap().exit_code, Some(0));
    }
    let out = env.exec("box", &req(&["cat", "/tmp/order"])).await.unwrap();
    let want: String = (0..20).map(|i| format!("{i}\n")).collect();
    assert_eq!(text(&out.stdout), want);
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
both!(background_processes_and_order_behave_like_exec);

async fn init_duties_zombies_reaped_and_sigterm_reaches_the_service(t: StepTransport) {
    let run = run_id(&format!("init-{t:?}"));
    let b = backend_for(&run, t).await;
    let mut s = svc("svc");
    let script = "trap 'exit 42' TERM; while :; do sleep 0.1; done";
    s.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
    let env = b
        .acquire(&spec("init", vec![s]))
        .await
        .expect("acquire")
        .checked(t);
    // Orphans of a step (re-parented to the init) are reaped once they exit.
    let r = req(&["sh", "-c", "(sleep 0.2 &); (sleep 0.2 &); true"]);
    assert_eq!(env.exec("svc", &r).await.unwrap().exit_code, Some(0));
    let mut zombies = String::from("never checked");
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ps = env
            .exec("svc", &req(&["ps", "-o", "stat,args"]))
            .await
            .unwrap();
        let listing = text(&ps.stdout);
        zombies = listing
            .lines()
            .filter(|l| l.trim_start().starts_with('Z'))
            .collect::<Vec<_>>()
            .join("\n");
        if zombies.is_empty() && !listing.contains("sleep 0.2") {
            break;
        }
    }
    assert_eq!(zombies, "", "zombies left");
    // `docker stop` sends SIGTERM to the init, which must pass it to the service's shell.
    let id = container_of(&run);
    let st = Proc::new("docker")
        .args(["stop", "-t", "20", &id])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", text(&st.stderr));
    let code = Proc::new("docker")
        .args(["inspect", "--format", "{{.State.ExitCode}}", &id])
        .output()
        .unwrap();
    assert_eq!(
        text(&code.stdout).trim(),
        "42",
        "the service's own exit code"
    );
    env.release(false).await.expect("release");
    finish(b, &run).await;
}
both!(init_duties_zombies_reaped_and_sigterm_reaches_the_service);

/// A dynamically linked executable of this host.
fn dynamic_host_binary() -> PathBuf {
    let sh = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
    let facts = clnrm::agent::binary::file_facts(&sh).expect("/bin/sh is an ELF");
    assert!(facts.dynamic, "{} is static on this host", sh.display());
    sh
}

/// Copy the test image's static busybox out: a static ELF that is not an agent.
fn static_non_agent() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        ensure_test_image();
        let dir = std::env::temp_dir().join(format!("clnrm-test-bb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let created = Proc::new("docker")
            .args([
                "create",
                "--label",
                "clnrm-test=busybox-copy",
                IMAGE,
                "true",
            ])
            .output()
            .unwrap();
        let id = text(&created.stdout).trim().to_string();
        let dest = dir.join("busybox");
        let cp = Proc::new("docker")
            .args(["cp", &format!("{id}:/bin/busybox"), dest.to_str().unwrap()])
            .status()
            .unwrap();
        Proc::new("docker").args(["rm", &id]).output().unwrap();
        assert!(cp.success());
        dest
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_agents_fall_back_to_exec_with_the_reason() {
    let run = run_id("fallback");
    let b = backend(&run).await;
    let note = |env: &dyn Env| env.transport().unwrap();
    // Chosen explicitly.
    b.set_step_transport(StepTransport::Exec);
    let env = b.acquire(&spec("fb1", vec![svc("box")])).await.unwrap();
    assert_eq!(
        note(env.as_ref()),
        (
            Transport::Exec,
            Some("chosen with `--step-transport exec`".into())
        )
    );
    env.release(false).await.unwrap();
    // A dynamically linked executable (the host's shell; the suite itself may be static).
    b.set_step_transport(StepTransport::Auto);
    b.set_agent_binary(&dynamic_host_binary());
    let env = b.acquire(&spec("fb2", vec![svc("box")])).await.unwrap();
    let (tr, why) = note(env.as_ref());
    assert_eq!(tr, Transport::Exec);
    assert!(why.unwrap().contains("dynamically linked"));
    assert_eq!(
        env.exec("box", &req(&["true"])).await.unwrap().exit_code,
        Some(0)
    );
    env.release(false).await.unwrap();
    // A static binary that does not start as an agent in the container.
    b.set_agent_binary(&static_non_agent());
    let env = b.acquire(&spec("fb3", vec![svc("box")])).await.unwrap();
    let (tr, why) = note(env.as_ref());
    assert_eq!(tr, Transport::Exec);
    let why = why.unwrap();
    assert!(why.contains("the agent could not start"), "{why}");
    assert!(why.contains("exited with code"), "{why}");
    assert_eq!(
        env.exec("box", &req(&["true"])).await.unwrap().exit_code,
        Some(0)
    );
    env.release(false).await.unwrap();
    // Required explicitly: an error, not a silent fallback.
    b.set_step_transport(StepTransport::Agent);
    b.set_agent_binary(&static_non_agent());
    match b.acquire(&spec("fb4", vec![svc("box")])).await {
        Err(e) => assert!(e.to_string().contains("step agent could not start"), "{e}"),
        Ok(_) => panic!("`agent` must not fall back"),
    }
    finish(b, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_dies_fails_the_step_and_the_env_is_not_reused() {
    let run = run_id("agentdies");
    let b = backend_for(&run, StepTransport::Agent).await;
    let mut s = svc("box");
    s.reuse = true;
    let t = spec("agentdies", vec![s]);
    let env = b.acquire(&t).await.unwrap().checked(StepTransport::Agent);
    env.exec("box", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    let id = container_of(&run);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        Proc::new("docker").args(["kill", &id]).output().unwrap()
    });
    let r = env.exec("box", &req(&["sleep", "30"])).await;
    killer.join().unwrap();
    match r {
        Err(e) => assert!(
            e.to_string().contains("connection closed during a step"),
            "{e}"
        ),
        Ok(o) => panic!("a killed container cannot answer: {o:?}"),
    }
    // The caller reports it healthy; the backend still does not hand it out again.
    env.release(true).await.unwrap();
    let env = b.acquire(&t).await.unwrap();
    let out = env
        .exec("box", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(1)));
    env.release(false).await.unwrap();
    finish(b, &run).await;
}

#[test]
fn killing_clnrm_leaves_no_container_running() {
    ensure_test_image();
    let name = format!("killed-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.clnrm.toml"),
        format!(
            "[meta]\nname = \"{name}\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n\
             [[scenario]]\nname = \"s\"\n\n[[scenario.steps]]\ncmd = [\"sleep\", \"60\"]\n"
        ),
    )
    .unwrap();
    let mut clnrm = Proc::new(env!("CARGO_BIN_EXE_clnrm"))
        .args(["run", "--step-transport", "agent", "--backend", "docker"])
        .arg(dir.path())
        .env("CLNRM_AGENT_BIN", agent_bin())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let filter = format!("label=clnrm.test={name}");
    let running = || {
        text(
            &Proc::new("docker")
                .args(["ps", "-q", "--filter", &filter])
                .output()
                .unwrap()
                .stdout,
        )
    };
    let mut seen = false;
    for _ in 0..300 {
        if running().trim().lines().count() == 1 {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give the step time to start inside the container.
    std::thread::sleep(Duration::from_millis(500));
    clnrm.kill().unwrap();
    clnrm.wait().unwrap();
    assert!(seen, "the scenario's container never ran");
    let mut still = running();
    for _ in 0..100 {
        if still.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        still = running();
    }
    let all = text(
        &Proc::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
            .unwrap()
            .stdout,
    );
    for id in all.lines() {
        Proc::new("docker").args(["rm", "-f", id]).output().unwrap();
    }
    assert_eq!(
        still.trim(),
        "",
        "containers still running after clnrm was killed"
    );
}
