//! Real-daemon tests of the Docker backend (not ignored: CI runs scripts/ensure-docker.sh
//! and scripts/test-image.sh first, and `ensure_test_image` builds the image if missing).

use std::collections::BTreeMap;
use std::process::Command as Proc;
use std::time::{Duration, Instant};

use clnrm::backend::docker::{clean_run, docker_available, DockerBackend};
use clnrm::backend::{Backend, BackendConfig, BackendError, ExecRequest};
use clnrm::results::Phase;
use tokio::sync::Mutex;

use clnrm::suite::{Limits, ReadyProbe, ServiceSpec, TestSpec};

mod support;
use support::{ensure_test_image, text, IMAGE};

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
    };
    DockerBackend::connect(cfg)
        .await
        .expect("docker daemon answers")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_runs_in_its_named_service() {
    let run = run_id("named");
    let b = backend(&run).await;
    let env = b
        .acquire(&spec("named", vec![svc("alpha"), svc("beta")]))
        .await
        .expect("acquire");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argv_exit_codes_streams_env_and_workdir() {
    let run = run_id("exec");
    let b = backend(&run).await;
    let mut s = svc("box");
    s.env.insert("SVC_VAR".into(), "svc value".into());
    s.workdir = Some("/tmp".into());
    let env = b.acquire(&spec("exec", vec![s])).await.expect("acquire");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_step_and_reports_it() {
    let run = run_id("timeout");
    let b = backend(&run).await;
    let env = b
        .acquire(&spec("timeout", vec![svc("box")]))
        .await
        .expect("acquire");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_talk_over_the_test_network() {
    let run = run_id("net");
    let b = backend(&run).await;
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
        .expect("acquire");
    let get = req(&["wget", "-q", "-O-", "http://server:8080/index.html"]);
    let out = env.exec("client", &get).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello-from-server\n");
    env.release(true).await.expect("release");
    finish(b, &run).await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_are_published_on_loopback_only_while_the_env_lives() {
    let run = run_id("ports");
    let b = backend(&run).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probe_waits_and_times_out() {
    let run = run_id("ready");
    let b = backend(&run).await;
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
        .expect("acquire");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarmed_env_is_ready_without_waiting_and_reuse_keeps_state() {
    let run = run_id("pool");
    let b = backend(&run).await;
    let fresh = spec("pool", vec![svc("box")]);
    b.prewarm(&fresh, 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let env = b.acquire(&fresh).await.expect("acquire");
    assert!(env.phases()[&Phase::EnvWait] < 50.0, "{:?}", env.phases());
    assert!(!env.reused());
    env.exec("box", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    env.release(true).await.expect("release");
    // Not reusable: the next one is the second pre-warmed env, without the mark.
    let env = b.acquire(&fresh).await.expect("acquire");
    let out = env
        .exec("box", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(1)));
    env.release(true).await.expect("release");

    let mut r = svc("keep");
    r.reuse = true;
    let reusable = spec("pool-reuse", vec![r]);
    let env = b.acquire(&reusable).await.expect("acquire");
    env.exec("keep", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    env.release(true).await.expect("release");
    let env = b.acquire(&reusable).await.expect("acquire");
    let out = env
        .exec("keep", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (true, Some(0)));
    assert_eq!(env.phases()[&Phase::Create], 0.0);
    // An unhealthy release destroys it: the next one is fresh.
    env.release(false).await.expect("release");
    let env = b.acquire(&reusable).await.expect("acquire");
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
    let b = backend(&run).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_all_keeps_any_healthy_env_and_timeouts_taint_it() {
    let run = run_id("reuseall");
    let b = backend(&run).await;
    b.set_reuse_all(true);
    let t = spec("reuseall", vec![svc("box")]);
    let env = b.acquire(&t).await.expect("acquire");
    env.exec("box", &req(&["touch", "/tmp/mark"]))
        .await
        .unwrap();
    env.release(true).await.expect("release");
    let env = b.acquire(&t).await.expect("acquire");
    assert!(env.reused());
    // A timed-out step leaves the container in an unknown state: even a "healthy" release
    // must not hand it out again.
    let mut slow = req(&["sleep", "30"]);
    slow.timeout = Duration::from_millis(300);
    assert!(env.exec("box", &slow).await.unwrap().timed_out);
    env.release(true).await.expect("release");
    let env = b.acquire(&t).await.expect("acquire");
    let out = env
        .exec("box", &req(&["test", "-f", "/tmp/mark"]))
        .await
        .unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(1)));
    env.release(true).await.expect("release");
    finish(b, &run).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_exits_fails_fast_instead_of_waiting_for_readiness() {
    let run = run_id("exits");
    let b = backend(&run).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reusable_env_that_died_while_idle_is_replaced() {
    let run = run_id("died");
    let b = backend(&run).await;
    let mut s = svc("box");
    s.reuse = true;
    let t = spec("died", vec![s]);
    let env = b.acquire(&t).await.expect("acquire");
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
    let env = b.acquire(&t).await.expect("acquire");
    let out = env.exec("box", &req(&["true"])).await.unwrap();
    assert_eq!((env.reused(), out.exit_code), (false, Some(0)));
    env.release(true).await.expect("release");
    finish(b, &run).await;
}
