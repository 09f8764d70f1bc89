//! Watch mode end to end: a real `clnrm dev` session through the binary. Each test edits files
//! on disk, waits for the cycle's `cycle N done` line on stderr and asserts the outcome.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;

mod support;
use support::{ensure_test_image, write, IMAGE};

const WAIT: Duration = Duration::from_secs(20);

/// A running watch session with its stderr collected line by line.
struct Session {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Everything read so far (for failure messages).
    seen: Vec<String>,
}

impl Session {
    fn start(dir: &Path, extra: &[&str]) -> Session {
        let mut child = Command::new(cargo_bin("clnrm"))
            .arg("dev")
            .arg(dir)
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("clnrm starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Lines up to and including `cycle N done ...`; panics after `WAIT`.
    fn cycle(&mut self, n: u32) -> Vec<String> {
        let marker = format!("cycle {n} done ");
        let deadline = Instant::now() + WAIT;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let done = line.starts_with(&marker);
                    out.push(line);
                    if done {
                        return out;
                    }
                }
                Err(_) => panic!(
                    "no `{marker}` within {WAIT:?}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Assert nothing is printed for `quiet` (no cycle started).
    fn assert_quiet(&mut self, quiet: Duration) {
        if let Ok(line) = self.lines.recv_timeout(quiet) {
            panic!(
                "expected no output, got `{line}`; before:\n{}",
                self.seen.join("\n")
            );
        }
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.id() as i32;
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("session did not end; output:\n{}", self.seen.join("\n"));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn host_test(name: &str, expected: &str) -> String {
    format!(
        "[meta]\nname = \"{name}\"\n\n[service.sh]\n\n[[scenario]]\nname = \"echoes\"\n\n[[scenario.steps]]\ncmd = [\"echo\", \"hello\"]\nstdout_equals = \"{expected}\"\n"
    )
}

fn last(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}

fn summary(lines: &[String], n: u32) -> String {
    let prefix = format!("cycle {n}: ");
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with(&prefix) && l.contains(" · total "))
        .cloned()
        .unwrap_or_else(|| panic!("no latency line in {lines:#?}"))
}

#[test]
fn edit_break_and_fix_a_test_in_one_session() {
    let d = tempfile::tempdir().expect("tempdir");
    let file = write(d.path(), "host.clnrm.toml", &host_test("host", "hello"));
    let mut s = Session::start(
        d.path(),
        &[
            "--backend",
            "local",
            "--debounce-ms",
            "20",
            "--max-cycles",
            "3",
        ],
    );
    let c0 = s.cycle(0);
    assert!(last(&c0).ends_with("status=passed"), "{c0:#?}");
    assert!(c0
        .iter()
        .any(|l| l == "PASS  host / echoes" || l.starts_with("PASS  host / echoes (")));

    // A change that makes the expectation fail: re-run, reported as failed.
    std::fs::write(&file, host_test("host", "bye")).expect("edit");
    let c1 = s.cycle(1);
    assert!(last(&c1).ends_with("status=failed"), "{c1:#?}");
    assert!(
        c1.iter().any(|l| l.starts_with("FAIL  host / echoes")),
        "{c1:#?}"
    );
    let line = summary(&c1, 1);
    assert!(
        line.starts_with("cycle 1: 1 test, failed (1 of 1 scenario) · detect "),
        "{line}"
    );
    assert!(
        line.contains(" · debounce ") && line.contains(" · exec "),
        "{line}"
    );

    // Invalid: the located error at once, nothing run, session alive.
    std::fs::write(
        &file,
        host_test("host", "hello").replace("name = \"host\"", "nmae = \"host\""),
    )
    .expect("edit");
    let c2 = s.cycle(2);
    assert!(last(&c2).ends_with("status=invalid"), "{c2:#?}");
    let text = c2.join("\n");
    assert!(
        text.contains("error: unknown key `nmae` in `[meta]`"),
        "{text}"
    );
    assert!(text.contains("host.clnrm.toml:2:1"), "{text}");
    assert!(text.contains("did you mean `name`?"), "{text}");
    assert!(!text.contains("PASS") && !text.contains("FAIL"), "{text}");
    assert!(
        summary(&c2, 2).starts_with("cycle 2: 0 tests, 2 errors · "),
        "{text}"
    );

    // Fixed: passes again; --max-cycles 3 then ends the session with that verdict.
    std::fs::write(&file, host_test("host", "hello")).expect("edit");
    let c3 = s.cycle(3);
    assert!(last(&c3).ends_with("status=passed"), "{c3:#?}");
    assert_eq!(s.exit_code(), Some(0));
}

#[test]
fn same_bytes_and_editor_files_trigger_nothing_and_only_affected_tests_run() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(d.path().join(".git")).expect("root marker");
    let a = write(d.path(), "a.clnrm.toml", &host_test("a", "hello"));
    write(d.path(), "b.clnrm.toml", &host_test("b", "hello"));
    write(
        d.path(),
        "_name.tera",
        "{% macro n() %}templ{% endmacro n %}",
    );
    let with = "{% import \"_name.tera\" as m %}".to_string() + &host_test("{{ m::n() }}", "hello");
    write(d.path(), "t.clnrm.toml.tera", &with);
    let mut s = Session::start(
        d.path(),
        &[
            "--backend",
            "local",
            "--debounce-ms",
            "20",
            "--max-cycles",
            "2",
        ],
    );
    let c0 = s.cycle(0);
    assert!(
        summary(&c0, 0).starts_with("cycle 0: 3 tests, passed"),
        "{c0:#?}"
    );

    // Same bytes, editor scratch files, an unrelated file: no cycle at all.
    std::fs::write(&a, host_test("a", "hello")).expect("rewrite");
    write(d.path(), ".a.clnrm.toml.swp", "swap");
    write(d.path(), "4913", "");
    write(d.path(), "a.clnrm.toml~", "backup");
    write(d.path(), "notes.md", "unrelated");
    s.assert_quiet(Duration::from_millis(600));

    // A test file: only that one runs.
    write(
        d.path(),
        "b.clnrm.toml",
        &host_test("b", "hello").replace("echoes", "echoes again"),
    );
    let c1 = s.cycle(1);
    assert!(
        c1[0].starts_with("cycle 1: changed b.clnrm.toml; 1 test file affected"),
        "{c1:#?}"
    );
    let ran: Vec<&String> = c1.iter().filter(|l| l.starts_with("PASS")).collect();
    assert_eq!(ran.len(), 1, "{c1:#?}");
    assert!(ran[0].starts_with("PASS  b / echoes again ("), "{c1:#?}");

    // An included template: only the test including it runs, rendered with the new macro.
    write(
        d.path(),
        "_name.tera",
        "{% macro n() %}changed{% endmacro n %}",
    );
    let c2 = s.cycle(2);
    assert!(
        c2[0].starts_with("cycle 2: changed _name.tera; 1 test file affected"),
        "{c2:#?}"
    );
    let ran: Vec<&String> = c2.iter().filter(|l| l.starts_with("PASS")).collect();
    assert_eq!(ran.len(), 1, "{c2:#?}");
    assert!(ran[0].starts_with("PASS  changed / echoes ("), "{c2:#?}");
    assert_eq!(s.exit_code(), Some(0));
}

#[test]
fn a_new_test_file_joins_the_session() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "a.clnrm.toml", &host_test("a", "hello"));
    let mut s = Session::start(d.path(), &["--backend", "local", "--max-cycles", "1"]);
    s.cycle(0);
    std::fs::create_dir(d.path().join("sub")).expect("mkdir");
    write(
        &d.path().join("sub"),
        "new.clnrm.toml",
        &host_test("new", "hello"),
    );
    let c1 = s.cycle(1);
    assert!(
        c1.iter().any(|l| l.starts_with("PASS  new / echoes (")),
        "{c1:#?}"
    );
    assert!(!c1.iter().any(|l| l.starts_with("PASS  a /")), "{c1:#?}");
    assert_eq!(s.exit_code(), Some(0));
}

fn containers_of_run(run: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=clnrm.run={run}")])
        .output()
        .expect("docker CLI runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .count()
}

fn docker_test(env: &str, expected: &str) -> String {
    format!(
        "[meta]\nname = \"warm\"\n\n[service.app]\nimage = \"{IMAGE}\"\nenv = {{ MODE = \"{env}\" }}\n\n[[scenario]]\nname = \"reads env\"\n\n[[scenario.steps]]\nsh = \"echo $MODE\"\nstdout_equals = \"{expected}\"\n"
    )
}

#[test]
fn published_ports_stay_reachable_between_cycles_and_close_with_the_session() {
    ensure_test_image();
    let d = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[meta]\nname = \"warm-ports\"\n\n[service.web]\nimage = \"{IMAGE}\"\ncmd = [\"sh\", \"-c\", \"mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 8080 -h /www\"]\nready = {{ cmd = [\"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8080/\"], interval = \"50ms\" }}\nports = [8080]\n\n[[scenario]]\nname = \"serves\"\nservice = \"web\"\n\n[[scenario.steps]]\nsh = \"wget -q -O- http://$CLNRM_WEB_ADDR_8080/\"\nstdout_equals = \"from-web\"\n"
    );
    write(d.path(), "ports.clnrm.toml", &text);
    let mut s = Session::start(d.path(), &["--backend", "docker", "--debounce-ms", "20"]);
    let c0 = s.cycle(0);
    assert!(last(&c0).ends_with("status=passed"), "{c0:#?}");
    let port: u16 = c0
        .iter()
        .find_map(|l| l.strip_prefix("published: warm-ports/web:8080 at 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no published line in {c0:#?}"))
        .trim()
        .parse()
        .expect("a port number");
    // Between cycles the kept environment answers on the published port.
    let get = || -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
        c.set_read_timeout(Some(WAIT))?;
        c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut body = String::new();
        c.read_to_string(&mut body)?;
        Ok(body)
    };
    let body = get().expect("published port answers between cycles");
    assert!(body.ends_with("from-web\n"), "{body}");
    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(), Some(143));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open after the session"
    );
}

#[test]
fn docker_environments_stay_warm_restart_on_service_change_and_are_removed_on_sigterm() {
    ensure_test_image();
    let d = tempfile::tempdir().expect("tempdir");
    let file = write(d.path(), "warm.clnrm.toml", &docker_test("one", "one"));
    let mut s = Session::start(
        d.path(),
        &["--backend", "docker", "--debounce-ms", "20", "-j", "1"],
    );
    let c0 = s.cycle(0);
    let run = c0
        .iter()
        .find_map(|l| l.strip_prefix("backend docker (run "))
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no run id in {c0:#?}"))
        .to_string();
    assert!(summary(&c0, 0).contains(" · env started "), "{c0:#?}");

    // Same services: the container of cycle 0 serves the edited scenario.
    std::fs::write(
        &file,
        docker_test("one", "one").replace("reads env", "reads env again"),
    )
    .expect("edit");
    let c1 = s.cycle(1);
    assert!(last(&c1).ends_with("status=passed"), "{c1:#?}");
    assert!(summary(&c1, 1).contains(" · env reused "), "{c1:#?}");

    // Service env changed: a new environment with the new value.
    std::fs::write(&file, docker_test("two", "two")).expect("edit");
    let c2 = s.cycle(2);
    assert!(last(&c2).ends_with("status=passed"), "{c2:#?}");
    assert!(summary(&c2, 2).contains(" · env started "), "{c2:#?}");
    assert!(
        containers_of_run(&run) >= 1,
        "warm containers exist during the session"
    );

    // More service configurations than the pool holds (`-j 1`: 3): the one being edited
    // still stays warm, older ones are evicted.
    let mut n = 2;
    for mode in ["three", "four", "five"] {
        n += 1;
        std::fs::write(&file, docker_test(mode, mode)).expect("edit");
        let c = s.cycle(n);
        assert!(summary(&c, n).contains(" · env started "), "{c:#?}");
    }
    std::fs::write(
        &file,
        docker_test("five", "five").replace("reads env", "again"),
    )
    .expect("edit");
    let c6 = s.cycle(6);
    assert!(last(&c6).ends_with("status=passed"), "{c6:#?}");
    assert!(summary(&c6, 6).contains(" · env reused "), "{c6:#?}");

    s.signal(libc::SIGTERM);
    assert_eq!(s.exit_code(), Some(143));
    assert_eq!(
        containers_of_run(&run),
        0,
        "every container removed at exit"
    );
}

#[test]
fn a_burst_over_several_files_is_one_cycle_even_with_gaps_above_the_base_window() {
    let d = tempfile::tempdir().expect("tempdir");
    write(d.path(), "t0.clnrm.toml", &host_test("t0", "hello"));
    let mut s = Session::start(
        d.path(),
        &[
            "--backend",
            "local",
            "--debounce-ms",
            "100",
            "--max-cycles",
            "1",
        ],
    );
    s.cycle(0);
    // Two files at once (a checkout starting), then one every 120 ms: longer than the base
    // window, shorter than the window widened by the number of files already seen.
    write(d.path(), "t1.clnrm.toml", &host_test("t1", "hello"));
    write(d.path(), "t2.clnrm.toml", &host_test("t2", "hello"));
    for i in 3..=5 {
        std::thread::sleep(Duration::from_millis(120));
        write(
            d.path(),
            &format!("t{i}.clnrm.toml"),
            &host_test(&format!("t{i}"), "hello"),
        );
    }
    let c1 = s.cycle(1);
    assert!(
        c1[0].ends_with("; 5 test files affected"),
        "one cycle for the whole burst: {c1:#?}"
    );
    assert!(
        summary(&c1, 1).starts_with("cycle 1: 5 tests, passed · "),
        "{c1:#?}"
    );
    assert_eq!(s.exit_code(), Some(0));
}

/// A host test whose step emits spans with the real OpenTelemetry Python SDK and expects the
/// span `expected` under it.
fn span_test(expected: &str) -> String {
    let emit = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telemetry/emit.py");
    format!(
        "[meta]\nname = \"spans\"\n\n[service.app]\n\n[[scenario]]\nname = \"emits\"\n\n[[scenario.steps]]\nname = \"work\"\ncmd = [\"python3\", \"{}\", \"work\", \"db.query\"]\n\n[[expect.span]]\nname = \"{expected}\"\nparent = \"work\"\n\n[expect]\nflush_ms = 300\n",
        emit.display()
    )
}

/// Watch sessions collect spans too: the session's receiver checks each cycle's spans, so an
/// edit that expects a span the step never emits fails the cycle, and the fix passes again.
#[test]
fn watch_cycles_collect_and_check_spans() {
    let d = tempfile::tempdir().expect("tempdir");
    let file = write(d.path(), "spans.clnrm.toml", &span_test("db.query"));
    let mut s = Session::start(
        d.path(),
        &[
            "--backend",
            "local",
            "--debounce-ms",
            "20",
            "--max-cycles",
            "2",
        ],
    );
    let c0 = s.cycle(0);
    assert!(last(&c0).ends_with("status=passed"), "{c0:#?}");
    assert!(
        c0.iter().any(|l| l.contains("telemetry: OTLP receiver on")),
        "{c0:#?}"
    );

    std::fs::write(&file, span_test("db.missing")).expect("edit");
    let c1 = s.cycle(1);
    assert!(last(&c1).ends_with("status=failed"), "{c1:#?}");
    let text = c1.join("\n");
    assert!(text.contains("no span named `db.missing`"), "{text}");

    std::fs::write(&file, span_test("db.query")).expect("edit");
    let c2 = s.cycle(2);
    assert!(last(&c2).ends_with("status=passed"), "{c2:#?}");
    assert_eq!(s.exit_code(), Some(0));
}

/// `--otel-endpoint` in a watch session: each cycle reaches the collector (clnrm's own receiver,
/// used as a plain collector) as a `clnrm.run` trace of its own, with the cycle's verdict.
#[test]
fn each_watch_cycle_is_exported_as_a_run() {
    use clnrm::telemetry::model::SpanStatus;
    use clnrm::telemetry::receiver::Receiver;
    use clnrm::telemetry::{Collector, Limits};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let collector = Collector::new(Limits::default());
    let receiver = rt
        .block_on(Receiver::start(
            std::net::Ipv4Addr::LOCALHOST.into(),
            collector.clone(),
        ))
        .expect("bind");
    let url = format!("http://{}", receiver.addr());
    let d = tempfile::tempdir().expect("tempdir");
    let file = write(d.path(), "host.clnrm.toml", &host_test("host", "hello"));
    let mut s = Session::start(
        d.path(),
        &[
            "--backend",
            "local",
            "--debounce-ms",
            "20",
            "--max-cycles",
            "1",
            "--otel-endpoint",
            &url,
        ],
    );
    let c0 = s.cycle(0);
    assert!(last(&c0).ends_with("status=passed"), "{c0:#?}");
    std::fs::write(&file, host_test("host", "bye")).expect("edit");
    let c1 = s.cycle(1);
    assert!(last(&c1).ends_with("status=failed"), "{c1:#?}");
    assert_eq!(s.exit_code(), Some(1));
    let spans = collector.take_unattributed();
    let runs: Vec<_> = spans.iter().filter(|s| s.name == "clnrm.run").collect();
    assert_eq!(runs.len(), 2, "{spans:#?}");
    assert_ne!(runs[0].trace_id, runs[1].trace_id);
    let mut statuses: Vec<SpanStatus> = runs.iter().map(|r| r.status).collect();
    statuses.sort_by_key(|s| s.as_str());
    assert_eq!(statuses, [SpanStatus::Error, SpanStatus::Ok]);
    // Each run holds its scenario and step spans.
    assert_eq!(spans.len(), 6, "{spans:#?}");
    drop(receiver);
}
