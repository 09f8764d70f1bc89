//! Telemetry end to end through the real binary: a CLI instrumented with the real OpenTelemetry
//! Python SDK (`opentelemetry-sdk` + OTLP/HTTP exporter, installed by `scripts/setup.sh`)
//! emits to clnrm's embedded receiver on the local backend; expectations, artifacts, and the
//! offline `spans` / `analyze` / `diff` commands run on what it emitted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telemetry")
}

mod support;

/// The clnrm binary in `dir`, without colour or Actions annotations.
fn clnrm_cmd(dir: &Path) -> Command {
    let mut c = Command::new(cargo_bin("clnrm"));
    c.current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("CLNRM_STEP_TRANSPORT")
        .env("NO_COLOR", "1");
    c
}

fn clnrm(dir: &Path, args: &[&str]) -> Output {
    clnrm_cmd(dir).args(args).output().expect("clnrm runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copy a fixture test into `dir`, pointing it at the emitter script.
fn place(dir: &Path, name: &str) -> PathBuf {
    let emit = fixtures().join("emit.py");
    let src = std::fs::read_to_string(fixtures().join(name)).expect("fixture");
    let dst = dir.join(name);
    std::fs::write(&dst, src.replace("EMIT", &emit.display().to_string())).expect("write");
    dst
}

fn results(dir: &Path) -> Value {
    let raw = std::fs::read_to_string(dir.join("out/results.json")).expect("results");
    serde_json::from_str(&raw).expect("json")
}

#[test]
fn python_sdk_spans_are_received_checked_saved_and_analysed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    place(dir, "pass.clnrm.toml");
    let out = clnrm(
        dir,
        &[
            "run",
            "pass.clnrm.toml",
            "--backend",
            "local",
            "--json",
            "out/results.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let r = results(dir);
    let sc = &r["tests"][0]["scenarios"][0];
    assert_eq!(sc["status"], "passed");
    // clnrm.scenario + clnrm.step:work + the SDK's work + db.query.
    assert_eq!(sc["telemetry"]["spans"], 4, "{sc}");
    assert_eq!(sc["telemetry"]["failed_expectations"], 0);
    let file = sc["telemetry"]["file"].as_str().expect("spans file");
    let saved = dir.join(file);
    assert!(saved.starts_with(dir.join("out/spans")), "{file}");

    // The tree joins the SDK's spans under clnrm's step span through TRACEPARENT.
    let tree = clnrm(dir, &["spans", saved.to_str().expect("utf8")]);
    assert_eq!(tree.status.code(), Some(0));
    let lines: Vec<String> = text(&tree.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(" [").next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "clnrm.scenario",
            "  clnrm.step:work",
            "    work",
            "      db.query"
        ],
        "{}",
        text(&tree.stdout)
    );

    // Offline: the same expectations hold on the saved trace.
    let ok = clnrm(
        dir,
        &["analyze", "pass.clnrm.toml", saved.to_str().expect("utf8")],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));

    // And a trace without the SDK's spans fails them, with file:line.
    let clnrm_only: String = std::fs::read_to_string(&saved)
        .expect("read")
        .lines()
        .filter(|l| l.contains("\"clnrm.run\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let stripped = dir.join("stripped.jsonl");
    std::fs::write(&stripped, clnrm_only).expect("write");
    let bad = clnrm(
        dir,
        &[
            "analyze",
            "pass.clnrm.toml",
            stripped.to_str().expect("utf8"),
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    let report = text(&bad.stdout);
    assert!(
        report.contains("pass.clnrm.toml:17: expect.span: expected a span named `work`"),
        "{report}"
    );

    // Diff: the stripped trace lost two spans.
    let d = clnrm(
        dir,
        &[
            "diff",
            saved.to_str().expect("utf8"),
            stripped.to_str().expect("utf8"),
            "--format",
            "json",
        ],
    );
    assert_eq!(d.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&d.stdout).expect("diff json");
    assert_eq!(
        v["removed"],
        serde_json::json!([
            "clnrm.scenario > clnrm.step:work > work",
            "clnrm.scenario > clnrm.step:work > work > db.query"
        ])
    );
    let same = clnrm(
        dir,
        &[
            "diff",
            saved.to_str().expect("utf8"),
            saved.to_str().expect("utf8"),
        ],
    );
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));
}

#[test]
fn a_step_that_exits_zero_without_the_expected_span_fails() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    place(dir, "fake_green.clnrm.toml");
    let out = clnrm(
        dir,
        &[
            "run",
            "fake_green.clnrm.toml",
            "--backend",
            "local",
            "--json",
            "out/results.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let r = results(dir);
    let sc = &r["tests"][0]["scenarios"][0];
    assert_eq!(sc["status"], "failed");
    assert_eq!(sc["steps"][0]["status"], "passed");
    let t = &sc["steps"][1];
    assert_eq!(t["name"], "telemetry");
    assert_eq!(t["line"], 18);
    assert_eq!(t["failures"][0]["expectation"], "expect.span (line 18)");
    let actual = t["failures"][0]["actual"].as_str().expect("actual");
    assert!(
        actual.contains("no span named `work` among 2 spans"),
        "{actual}"
    );
    let msg = sc["message"].as_str().expect("message");
    assert!(
        msg.starts_with("telemetry (fake_green.clnrm.toml:18)"),
        "{msg}"
    );
}

#[test]
fn telemetry_tables_are_validated_strictly_with_locations() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::write(
        dir.join("bad.clnrm.toml"),
        r#"[meta]
name = "bad"

[service.app]

[[scenario]]
name = "s"
[[scenario.steps]]
cmd = ["true"]

[[expect.span]]
name = "x"
knd = "client"

[expect.counts]
spans_total = { gte = "two" }
"#,
    )
    .expect("write");
    let out = clnrm(dir, &["validate", "bad.clnrm.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.clnrm.toml:13"), "{err}");
    assert!(
        err.contains("unknown key `knd`") && err.contains("did you mean `kind`?"),
        "{err}"
    );
    assert!(err.contains("bad.clnrm.toml:16"), "{err}");
}

fn ensure_test_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", "clnrm-test/busybox:1"])
        .output()
        .expect("docker CLI runs")
        .status
        .success();
    if !present {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-image.sh");
        assert!(Command::new("bash")
            .arg(script)
            .status()
            .expect("bash")
            .success());
    }
}

/// Run a Docker telemetry test once per step transport: what a step gets from telemetry
/// (`TRACEPARENT`, the `OTEL_*` variables) must not depend on how it reached the container.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn exec() {
                super::$name("exec")
            }
            #[test]
            fn agent() {
                super::$name("agent")
            }
        }
    };
}

/// The service reaches the receiver over the run's internal network, and the span the step
/// posts with its `TRACEPARENT` joins the scenario's trace under the step's span.
fn inside_docker_a_service_reaches_the_receiver_and_joins_the_trace(transport: &str) {
    ensure_test_image();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    place(dir, "docker.clnrm.toml");
    let mut cmd = clnrm_cmd(dir);
    cmd.args([
        "run",
        "docker.clnrm.toml",
        "--backend",
        "docker",
        "--step-transport",
        transport,
        "--json",
        "out/results.json",
    ]);
    if transport == "agent" {
        cmd.env("CLNRM_AGENT_BIN", support::agent_bin());
    }
    let out = cmd.output().expect("clnrm runs");
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let sc = &results(dir)["tests"][0]["scenarios"][0];
    assert_eq!(sc["transport"], transport, "{sc}");
    // clnrm.scenario, two step spans, the container's span (its parent is the step's span,
    // checked by the test's `[[expect.span]]`).
    assert_eq!(sc["telemetry"]["spans"], 4, "{sc}");
    assert_eq!(sc["telemetry"]["failed_expectations"], 0, "{sc}");
}
both!(inside_docker_a_service_reaches_the_receiver_and_joins_the_trace);
