//! Telemetry end to end through the real binary: a CLI instrumented with the real OpenTelemetry
//! Python SDK (`opentelemetry-sdk` + OTLP/HTTP exporter, installed by `scripts/setup.sh`)
//! emits to clnrm's embedded receiver on the local backend; expectations, artifacts, and the
//! offline `spans` / `analyze` / `diff` commands run on what it emitted. Inside Docker the
//! instrumented program is `examples/otel_emitter.rs` (the Rust SDK with the OTLP exporters,
//! static) in a test image derived from the busybox one.

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
    let bad = fixtures().join("bad_grpc.py");
    let src = std::fs::read_to_string(fixtures().join(name)).expect("fixture");
    let dst = dir.join(name);
    let src = src
        .replace("EMIT", &emit.display().to_string())
        .replace("BAD_GRPC", &bad.display().to_string());
    std::fs::write(&dst, src).expect("write");
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

/// The SDK's OTLP/gRPC exporter, selected by the test with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`
/// on a step and on a service: the spans arrive through the gRPC receiver (the gRPC exporter
/// cannot talk to the HTTP one) and join the scenario's trace; a malformed message gets a gRPC
/// error status and a run warning, and the receiver keeps serving.
#[test]
fn python_sdk_grpc_exporter_is_received_when_the_test_selects_grpc() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    place(dir, "grpc.clnrm.toml");
    let out = clnrm(
        dir,
        &[
            "run",
            "grpc.clnrm.toml",
            "--backend",
            "local",
            "--json",
            "out/results.json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("(gRPC)"), "{stderr}");
    assert!(
        stderr.contains("rejected an OTLP/gRPC request (Internal)"),
        "{stderr}"
    );
    let r = results(dir);
    let scs = r["tests"][0]["scenarios"].as_array().expect("scenarios");
    assert_eq!(scs.len(), 2);
    for sc in scs {
        assert_eq!(sc["status"], "passed", "{sc}");
    }
    // clnrm.scenario + 2 step spans + the SDK's work + db.query.
    assert_eq!(scs[0]["telemetry"]["spans"], 5, "{}", scs[0]);
    assert_eq!(scs[0]["steps"][1]["stdout"], "INTERNAL\n");
    // clnrm.scenario + clnrm.step:svc-work + svc-root + svc.call.
    assert_eq!(scs[1]["telemetry"]["spans"], 4, "{}", scs[1]);
    let saved = dir.join(scs[1]["telemetry"]["file"].as_str().expect("file"));
    let tree = clnrm(dir, &["spans", saved.to_str().expect("utf8")]);
    let tree = text(&tree.stdout);
    let svc_root = tree.lines().position(|l| l.contains("svc-root"));
    let call = tree.lines().position(|l| l.contains("svc.call"));
    assert!(
        matches!((svc_root, call), (Some(a), Some(b)) if a < b),
        "{tree}"
    );
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

/// Run a fixture script of tests/fixtures/report (a real consumer: junitparser, cmarkgfm).
fn consumer(script: &str, file: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(script);
    let out = Command::new("python3")
        .arg(script)
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The span summary reaches the reports: JUnit (a suite property per scenario and a line of
/// the testcase's system-out, read back with junitparser), markdown (a telemetry table and the
/// failed expectation with the nearest spans, rendered with cmark-gfm), JSON (the saved spans).
#[test]
fn reports_summarise_the_spans_of_each_scenario() {
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
            "--junit",
            "out/junit.xml",
            "--markdown",
            "out/summary.md",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let r = results(dir);
    let file = r["tests"][0]["scenarios"][0]["telemetry"]["file"]
        .as_str()
        .expect("spans file in the JSON results")
        .to_string();
    assert!(dir.join(&file).is_file(), "{file}");
    let summary = format!("2 spans, 0 errors, 1 failed expectation, saved to {file}");

    let view: Value =
        serde_json::from_str(&consumer("junit_summary.py", &dir.join("out/junit.xml")))
            .expect("json");
    let suite = &view[0];
    assert_eq!(
        suite["properties"]["clnrm.spans.claims success"], summary,
        "{suite}"
    );
    let case = &suite["cases"][0];
    assert_eq!(case["result"], "failure");
    let system_out = case["system_out"].as_str().expect("system-out");
    assert!(
        system_out.starts_with(&format!("clnrm: telemetry: {summary}\n")),
        "{system_out}"
    );
    assert!(
        case["message"]
            .as_str()
            .is_some_and(|m| m.contains("no span named `work` among 2 spans")),
        "{case}"
    );

    let html = consumer("render_gfm.py", &dir.join("out/summary.md"));
    assert!(html.contains("<h4>Telemetry</h4>"), "{html}");
    assert!(
        html.contains("<td>otel-fake-green</td>\n<td>claims success</td>\n<td align=\"right\">2</td>\n<td align=\"right\">0</td>\n<td align=\"right\">❌ 1</td>"),
        "{html}"
    );
    assert!(html.contains(&format!("Telemetry: {summary}.")), "{html}");
    // The failed expectation, with what came nearest, in the scenario's details.
    assert!(
        html.contains("expect.span (line 18)\n  expected: a span named `work`"),
        "{html}"
    );
    assert!(
        html.contains("no span named `work` among 2 spans"),
        "{html}"
    );
}

/// `baseline record --traces` keeps a span tree per scenario beside the baseline; the gate
/// compares each run with it: the same tree passes quietly, a renamed span is a warning, and
/// under `[perf] trace_drift = "fail"` it fails the gate (exit 3).
#[test]
fn trace_snapshots_in_the_baseline_report_structural_drift() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    place(dir, "drift.clnrm.toml");
    let base = ["--backend", "local", "--baseline", "base/perf.toml"];
    let mut record = vec![
        "baseline",
        "record",
        "drift.clnrm.toml",
        "--runs",
        "1",
        "--traces",
    ];
    record.extend(base);
    let out = clnrm(dir, &record);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let toml = std::fs::read_to_string(dir.join("base/perf.toml")).expect("baseline");
    let snapshot = "perf.traces/drift.clnrm.toml/emits.otlp.jsonl";
    assert!(
        toml.contains(&format!(
            "[traces]\n\"drift.clnrm.toml#emits\" = \"{snapshot}\"\n"
        )),
        "{toml}"
    );
    let saved = std::fs::read_to_string(dir.join("base").join(snapshot)).expect("snapshot");
    assert!(saved.contains("db.query"), "{saved}");

    let gate = |vars: &[&str]| {
        let mut args = vec!["run", "drift.clnrm.toml", "--gate", "--confirm-runs", "0"];
        args.extend(base);
        for v in vars {
            args.extend(["--var", v]);
        }
        clnrm(dir, &args)
    };
    let same = gate(&[]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stderr));
    assert!(
        !text(&same.stderr).contains("trace drift"),
        "{}",
        text(&same.stderr)
    );

    let warned = gate(&["child=db.other"]);
    let stderr = text(&warned.stderr);
    assert_eq!(warned.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("trace drift in `drift.clnrm.toml#emits` (warning): 1 added, 1 removed"),
        "{stderr}"
    );
    // The same drift found again by gating the saved results (without the test files, a
    // warning only).
    let mut args = vec!["run", "drift.clnrm.toml", "--json", "out/w.json"];
    args.extend(base);
    args.extend(["--var", "child=db.other"]);
    assert_eq!(clnrm(dir, &args).status.code(), Some(0));
    let regate = clnrm(dir, &["gate", "out/w.json", "--baseline", "base/perf.toml"]);
    let stderr = text(&regate.stderr);
    assert_eq!(regate.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("trace drift in `drift.clnrm.toml#emits` (warning): 1 added, 1 removed"),
        "{stderr}"
    );

    let failed = gate(&["child=db.other", "drift=fail"]);
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("trace drift in `drift.clnrm.toml#emits` fails the gate"),
        "{stderr}"
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
    support::ensure_test_image();
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

/// The local test image with the static OpenTelemetry emitter added as `/bin/otel_emitter`
/// (`docker build` FROM the local busybox image, no registry), built once per test binary; the
/// layer cache makes it a no-op while the emitter is unchanged.
fn emitter_image() -> &'static str {
    const TAG: &str = "clnrm-test/otel-emitter:1";
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        support::ensure_test_image();
        let ctx = tempfile::tempdir().expect("tmp");
        std::fs::copy(support::otel_emitter(), ctx.path().join("otel_emitter")).expect("copy");
        std::fs::write(
            ctx.path().join("Dockerfile"),
            format!(
                "FROM {}\nCOPY otel_emitter /bin/otel_emitter\n",
                support::IMAGE
            ),
        )
        .expect("write");
        // The classic builder uses the local base as is; nothing is pulled.
        let out = Command::new("docker")
            .args(["build", "--quiet", "--tag", TAG])
            .arg(ctx.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("docker CLI runs");
        assert!(out.status.success(), "docker build: {}", text(&out.stderr));
    });
    TAG
}

/// The real Rust OpenTelemetry SDK inside containers: the emitter exports over OTLP/HTTP
/// (protobuf), over OTLP/gRPC selected on a step, and over OTLP/gRPC selected on a service;
/// every span joins the scenario's trace under its step's span. A step that exits 0 and exports
/// spans, but not the expected one, fails its scenario.
fn inside_docker_the_rust_sdk_exports_over_http_and_grpc(transport: &str) {
    let image = emitter_image();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let src = std::fs::read_to_string(fixtures().join("docker_sdk.clnrm.toml")).expect("fixture");
    std::fs::write(
        dir.join("docker_sdk.clnrm.toml"),
        src.replace("EMITTER_IMAGE", image),
    )
    .expect("write");
    let mut cmd = clnrm_cmd(dir);
    cmd.args([
        "run",
        "docker_sdk.clnrm.toml",
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
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    let r = results(dir);
    let scs = r["tests"][0]["scenarios"].as_array().expect("scenarios");
    let by = |name: &str| {
        scs.iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("scenario {name}: {r}"))
    };

    let ok = by("sdk exports");
    assert_eq!(ok["status"], "passed", "{ok}\n{stderr}");
    assert_eq!(ok["transport"], transport, "{ok}");
    // clnrm.scenario, 3 step spans, and 2 SDK spans per step (also `[expect.counts]`).
    assert_eq!(ok["telemetry"]["spans"], 10, "{ok}");
    assert_eq!(ok["telemetry"]["failed_expectations"], 0, "{ok}");
    let saved = dir.join(ok["telemetry"]["file"].as_str().expect("spans file"));
    let tree = clnrm(dir, &["spans", saved.to_str().expect("utf8")]);
    let lines: Vec<String> = text(&tree.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(" [").next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "clnrm.scenario",
            "  clnrm.step:http",
            "    work",
            "      db.query",
            "  clnrm.step:grpc-step",
            "    rpc-work",
            "      rpc.call",
            "  clnrm.step:grpc-service",
            "    svc-work",
            "      svc.call",
        ],
        "{}",
        text(&tree.stdout)
    );

    let fake = by("fake green");
    assert_eq!(fake["status"], "failed", "{fake}");
    assert_eq!(fake["steps"][0]["status"], "passed", "{fake}");
    let t = &fake["steps"][1];
    assert_eq!(t["name"], "telemetry", "{fake}");
    assert_eq!(t["failures"][0]["expectation"], "expect.span (line 86)");
    let actual = t["failures"][0]["actual"].as_str().expect("actual");
    assert!(
        actual.contains("no span named `work` among 3 spans"),
        "{actual}"
    );
}

/// `--otel-endpoint`: clnrm's own spans of the run reach a collector (clnrm's own OTLP/HTTP
/// receiver, used here as a plain collector) as one trace: `clnrm.run` > one `clnrm.scenario`
/// per scenario > one `clnrm.step:<name>` per step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_endpoint_receives_the_run_scenario_step_tree() {
    use clnrm::telemetry::receiver::Receiver;
    use clnrm::telemetry::{Collector, Limits};
    let collector = Collector::new(Limits::default());
    let receiver = Receiver::start(std::net::Ipv4Addr::LOCALHOST.into(), collector.clone())
        .await
        .expect("bind");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    place(&dir, "pass.clnrm.toml");
    let url = format!("http://{}", receiver.addr());
    let out = tokio::task::spawn_blocking(move || {
        clnrm(
            &dir,
            &[
                "run",
                "pass.clnrm.toml",
                "--backend",
                "local",
                "--otel-endpoint",
                &url,
            ],
        )
    })
    .await
    .expect("join");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("sent 3 clnrm span(s)"), "{stderr}");
    let spans = collector.take_unattributed();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(spans.len(), 3, "{names:?}");
    let by = |n: &str| spans.iter().find(|s| s.name == n).expect(n);
    let run = by("clnrm.run");
    let scenario = by("clnrm.scenario");
    let step = by("clnrm.step:work");
    assert_eq!(run.parent_span_id, None);
    assert_eq!(scenario.parent_span_id, Some(run.span_id));
    assert_eq!(step.parent_span_id, Some(scenario.span_id));
    assert!(spans.iter().all(|s| s.trace_id == run.trace_id));
    // Only clnrm's spans: the SDK's spans of the step stay with clnrm's receiver.
    assert!(!names.contains(&"work") && !names.contains(&"db.query"));
    drop(receiver);
}

#[test]
fn an_unreachable_or_unsupported_otel_endpoint_is_a_warning_or_a_usage_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    place(dir, "pass.clnrm.toml");
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = clnrm(
        dir,
        &[
            "run",
            "pass.clnrm.toml",
            "--backend",
            "local",
            "--otel-endpoint",
            &url,
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("`--otel-endpoint`: cannot connect"),
        "{stderr}"
    );
    let out = clnrm(
        dir,
        &[
            "run",
            "pass.clnrm.toml",
            "--backend",
            "local",
            "--otel-endpoint",
            "https://c:4318",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("scheme `https` is not supported"));
}
both!(inside_docker_a_service_reaches_the_receiver_and_joins_the_trace);
both!(inside_docker_the_rust_sdk_exports_over_http_and_grpc);
