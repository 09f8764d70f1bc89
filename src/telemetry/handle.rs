//! The one handle the runner talks to: a receiver plus span store for the length of a run,
//! the `OTEL_*` / `TRACEPARENT` variables for each step, clnrm's own scenario and step spans,
//! and the per-scenario check and artifact.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::collector::{Collector, Limits, ScenarioKey, ENV_ATTR};
use super::expect::{self, CheckContext, Expectations, SpanFailure, DEFAULT_FLUSH_MS};
use super::grpc::GrpcReceiver;
use super::model::{AttrValue, Attrs, Span, SpanKind, SpanStatus};
use super::receiver::Receiver;
use crate::suite::{ScenarioSpec, StepSpec, TestSpec};

/// Variables clnrm sets on every step unless the test sets them itself.
pub const OTEL_VARS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
    "TRACEPARENT",
];

/// The receiver's two addresses, as the code under test reaches them (`http://ip:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// OTLP/HTTP (`/v1/traces`, protobuf or JSON).
    pub http: String,
    /// OTLP/gRPC.
    pub grpc: String,
}

/// The OTLP protocol an exporter will speak, as the OTel spec's variables say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

impl Protocol {
    /// The value of `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

impl Endpoints {
    /// The endpoint for a process whose environment (the step's over its service's, in that
    /// order of precedence) holds `vars`: a test selects gRPC by setting
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`) to `grpc`;
    /// anything else, or nothing, is OTLP/HTTP.
    pub fn for_protocol(&self, protocol: Protocol) -> &str {
        match protocol {
            Protocol::Grpc => &self.grpc,
            Protocol::HttpProtobuf => &self.http,
        }
    }
}

/// The protocol chosen by the first of `layers` (most specific first) that sets one.
pub fn protocol<'a>(layers: impl IntoIterator<Item = &'a BTreeMap<String, String>>) -> Protocol {
    for env in layers {
        let set = env
            .get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env.get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(p) = set {
            return if p.trim().eq_ignore_ascii_case("grpc") {
                Protocol::Grpc
            } else {
                Protocol::HttpProtobuf
            };
        }
    }
    Protocol::HttpProtobuf
}

/// Name of clnrm's root span per scenario, and prefix of its step spans.
pub const SCENARIO_SPAN: &str = "clnrm.scenario";
pub const STEP_SPAN_PREFIX: &str = "clnrm.step:";

/// Telemetry of one run: start it once, hand it to the runner.
pub struct Telemetry {
    collector: Collector,
    receiver: Receiver,
    grpc: GrpcReceiver,
    endpoints: Endpoints,
    run_id: String,
    artifacts: Option<PathBuf>,
    ids: IdGen,
    /// Docker network the receiver listens on (removed by [`Telemetry::finish`]).
    network: std::sync::Mutex<Option<String>>,
    /// clnrm's own scenario and step spans of the run, for `--otel-endpoint`.
    own: OwnSpans,
}

/// clnrm's own spans of finished scenarios (bounded: a few per scenario).
type OwnSpans = Arc<std::sync::Mutex<Vec<Span>>>;
const OWN_SPANS_CAP: usize = 100_000;

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Telemetry {
    /// Start the receiver on `ip` (loopback for the local backend, the gateway of `network`
    /// for Docker). Spans of each scenario are written under `artifacts` when given.
    pub async fn start(
        ip: IpAddr,
        network: Option<String>,
        run_id: &str,
        artifacts: Option<PathBuf>,
        limits: Limits,
    ) -> std::io::Result<Arc<Telemetry>> {
        let collector = Collector::new(limits);
        let receiver = Receiver::start(ip, collector.clone()).await?;
        let grpc = GrpcReceiver::start(ip, collector.clone()).await?;
        let endpoints = Endpoints {
            http: format!("http://{}", receiver.addr()),
            grpc: format!("http://{}", grpc.addr()),
        };
        Ok(Arc::new(Telemetry {
            collector,
            receiver,
            grpc,
            endpoints,
            run_id: run_id.to_string(),
            artifacts,
            ids: IdGen::new(),
            network: std::sync::Mutex::new(network),
            own: OwnSpans::default(),
        }))
    }

    /// Send clnrm's own spans of the run (under a `clnrm.run` root from `start_ns` to now) to
    /// the user's collector at `endpoint` over OTLP/HTTP protobuf; the number of spans sent.
    pub async fn export_run(
        &self,
        endpoint: &hyper::Uri,
        start_ns: u64,
        ok: bool,
    ) -> Result<usize, String> {
        let own = std::mem::take(&mut *self.own.lock().unwrap_or_else(|p| p.into_inner()));
        let spans = super::export::run_tree(
            own,
            &self.run_id,
            (self.ids.trace_id(), self.ids.span_id()),
            start_ns,
            now_ns(),
            ok,
        );
        super::export::send(endpoint, &spans).await?;
        Ok(spans.len())
    }

    /// End of the run: remove the receiver's Docker network, if any. Idempotent.
    pub async fn finish(&self) {
        let net = self.network.lock().ok().and_then(|mut n| n.take());
        if let Some(id) = net {
            crate::backend::docker::remove_network(&id).await;
        }
    }

    /// `http://ip:port` of the OTLP/HTTP and OTLP/gRPC receivers, the values of
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Address of the OTLP/HTTP receiver.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.receiver.addr()
    }

    /// Address of the OTLP/gRPC receiver.
    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.grpc.addr()
    }

    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Warnings collected so far (bad requests, caps, unattributed spans).
    pub fn take_warnings(&self) -> Vec<String> {
        self.collector.take_warnings()
    }

    /// Start collecting for one scenario attempt.
    pub fn begin(
        &self,
        test: &TestSpec,
        index: usize,
        attempt: u32,
        env_id: Option<String>,
    ) -> ScenarioTrace {
        let trace_id = self.ids.trace_id();
        let root = self.ids.span_id();
        let now = now_ns();
        let env_id =
            env_id.unwrap_or_else(|| format!("{}-{}", self.run_id, self.ids.span_id() >> 16));
        let key = self.collector.open(trace_id, &env_id, now);
        let sc = &test.scenarios[index];
        ScenarioTrace {
            collector: self.collector.clone(),
            key,
            trace_id,
            root,
            start_ns: now,
            env_id,
            endpoints: self.endpoints.clone(),
            resource: Arc::new(Attrs::from([
                ("service.name".to_string(), AttrValue::Str("clnrm".into())),
                ("clnrm.run".to_string(), AttrValue::Str(self.run_id.clone())),
            ])),
            test_name: test.name.clone(),
            test_path: test.path.clone(),
            scenario: sc.name.clone(),
            attempt,
            levels: Expectations::merged(&test.expect, &sc.expect),
            services: test.services.keys().cloned().collect(),
            service_env: test
                .services
                .iter()
                .map(|(id, s)| (id.clone(), s.env.clone()))
                .collect(),
            artifacts: self.artifacts.clone(),
            ids: self.ids.clone(),
            own: self.own.clone(),
        }
    }
}

/// Collection for one scenario attempt.
pub struct ScenarioTrace {
    collector: Collector,
    key: ScenarioKey,
    trace_id: u128,
    root: u64,
    start_ns: u64,
    env_id: String,
    endpoints: Endpoints,
    resource: Arc<Attrs>,
    test_name: String,
    test_path: PathBuf,
    scenario: String,
    attempt: u32,
    levels: Vec<Expectations>,
    services: Vec<String>,
    service_env: BTreeMap<String, BTreeMap<String, String>>,
    artifacts: Option<PathBuf>,
    ids: IdGen,
    own: OwnSpans,
}

/// A step span in flight.
pub struct StepSpan {
    span_id: u64,
    start_ns: u64,
}

/// What the scenario's telemetry came to.
#[derive(Debug, Clone, Default)]
pub struct ScenarioOutcome {
    pub spans: usize,
    pub errors: usize,
    pub dropped: usize,
    pub failures: Vec<SpanFailure>,
    /// Where the spans were written, if they were.
    pub file: Option<PathBuf>,
    pub write_error: Option<String>,
}

impl ScenarioTrace {
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    pub fn has_expectations(&self) -> bool {
        !self.levels.is_empty()
    }

    /// Start the span of `step` and add the telemetry variables to its environment (each
    /// only when neither the step nor its service sets it).
    pub fn start_step(&self, step: &StepSpec, env: &mut BTreeMap<String, String>) -> StepSpan {
        let span_id = self.ids.span_id();
        let none = BTreeMap::new();
        let service_sets = self.service_env.get(&step.service).unwrap_or(&none);
        let protocol = protocol([&*env, service_sets]);
        let mut set = |k: &str, v: String| {
            if !env.contains_key(k) && !service_sets.contains_key(k) {
                env.insert(k.to_string(), v);
            }
        };
        set(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            self.endpoints.for_protocol(protocol).to_string(),
        );
        set("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.as_str().into());
        set("OTEL_SERVICE_NAME", step.service.clone());
        set(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("{ENV_ATTR}={}", self.env_id),
        );
        set("OTEL_BSP_SCHEDULE_DELAY", "100".into());
        set(
            "TRACEPARENT",
            format!("00-{:032x}-{span_id:016x}-01", self.trace_id),
        );
        StepSpan {
            span_id,
            start_ns: now_ns(),
        }
    }

    /// End a step span; `ok` is the step's verdict, `exit_code` its code if known.
    pub fn end_step(&self, step: &StepSpec, span: StepSpan, ok: bool, exit_code: Option<i64>) {
        let mut attrs = Attrs::from([
            ("clnrm.step".to_string(), AttrValue::Str(step.name.clone())),
            (
                "clnrm.service".to_string(),
                AttrValue::Str(step.service.clone()),
            ),
        ]);
        if let Some(c) = exit_code {
            attrs.insert("process.exit.code".into(), AttrValue::Int(c));
        }
        self.collector.push_own(
            self.key,
            Span {
                trace_id: self.trace_id,
                span_id: span.span_id,
                parent_span_id: Some(self.root),
                name: format!("{STEP_SPAN_PREFIX}{}", step.name),
                kind: SpanKind::Internal,
                start_ns: span.start_ns,
                end_ns: now_ns(),
                attrs,
                events: Vec::new(),
                status: if ok {
                    SpanStatus::Ok
                } else {
                    SpanStatus::Error
                },
                status_message: String::new(),
                resource: self.resource.clone(),
                scope: "clnrm".into(),
            },
        );
    }

    /// The steps are done: wait up to `flush_ms` for late batches (returning early once every
    /// expectation holds), check, save the spans, stop collecting.
    pub async fn finish(self, sc: &ScenarioSpec, ok: bool) -> ScenarioOutcome {
        let flush = Duration::from_millis(
            self.levels
                .iter()
                .filter_map(|l| l.flush_ms)
                .max()
                .unwrap_or(DEFAULT_FLUSH_MS),
        );
        let cx = CheckContext {
            services: self.services.clone(),
        };
        self.collector.end_lease(self.key, &self.env_id, now_ns());
        let root = Span {
            trace_id: self.trace_id,
            span_id: self.root,
            parent_span_id: None,
            name: SCENARIO_SPAN.into(),
            kind: SpanKind::Internal,
            start_ns: self.start_ns,
            end_ns: now_ns(),
            attrs: Attrs::from([
                (
                    "clnrm.test".to_string(),
                    AttrValue::Str(self.test_name.clone()),
                ),
                (
                    "clnrm.scenario".to_string(),
                    AttrValue::Str(sc.name.clone()),
                ),
                (
                    "clnrm.attempt".to_string(),
                    AttrValue::Int(self.attempt.into()),
                ),
            ]),
            events: Vec::new(),
            status: if ok {
                SpanStatus::Ok
            } else {
                SpanStatus::Error
            },
            status_message: String::new(),
            resource: self.resource.clone(),
            scope: "clnrm".into(),
        };
        self.collector.push_own(self.key, root);
        if !self.levels.is_empty() && !flush.is_zero() {
            let deadline = tokio::time::Instant::now() + flush;
            let mut seen = usize::MAX;
            loop {
                let n = self.collector.count(self.key);
                if n != seen {
                    seen = n;
                    let (spans, _) = self.collector.snapshot(self.key);
                    if expect::check(&self.levels, &spans, &cx).is_empty() {
                        break;
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let (spans, dropped) = self.collector.close(self.key);
        {
            let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
            let room = OWN_SPANS_CAP.saturating_sub(own.len());
            own.extend(
                spans
                    .iter()
                    .filter(|s| {
                        s.trace_id == self.trace_id && Arc::ptr_eq(&s.resource, &self.resource)
                    })
                    .take(room)
                    .cloned(),
            );
        }
        let failures = expect::check(&self.levels, &spans, &cx);
        let mut out = ScenarioOutcome {
            spans: spans.len(),
            errors: spans
                .iter()
                .filter(|s| s.status == SpanStatus::Error)
                .count(),
            dropped,
            failures,
            file: None,
            write_error: None,
        };
        if let Some(dir) = &self.artifacts {
            let path = artifact_path(dir, &self.test_path, &self.scenario);
            match write_spans(&path, &spans) {
                Ok(()) => out.file = Some(path),
                Err(e) => out.write_error = Some(e),
            }
        }
        out
    }
}

/// `KEY=VALUE` variables for a service container's main process: the receiver (its gRPC
/// endpoint when the service sets `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), the service id as service
/// name, the environment id as resource attribute; each only when the service does not set it.
pub fn service_otel_env(
    svc: &crate::suite::ServiceSpec,
    endpoints: &Endpoints,
    env_id: &str,
) -> Vec<String> {
    let protocol = protocol([&svc.env]);
    let endpoint = endpoints.for_protocol(protocol);
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_string()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.as_str().to_string()),
        ("OTEL_SERVICE_NAME", svc.id.clone()),
        ("OTEL_RESOURCE_ATTRIBUTES", format!("{ENV_ATTR}={env_id}")),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
    ]
    .into_iter()
    .filter(|(k, _)| !svc.env.contains_key(*k))
    .map(|(k, v)| format!("{k}={v}"))
    .collect()
}

/// `<dir>/<test path with / as __>/<scenario>.otlp.jsonl`, names reduced to a safe alphabet.
pub fn artifact_path(dir: &Path, test_path: &Path, scenario: &str) -> PathBuf {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let test = crate::results::display_path(test_path).replace('/', "__");
    dir.join(clean(&test))
        .join(format!("{}.otlp.jsonl", clean(scenario)))
}

fn write_spans(path: &Path, spans: &[Span]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut buf = Vec::new();
    super::model::write_jsonl(spans, &mut buf).map_err(|e| e.to_string())?;
    crate::report::write_atomic(path, &buf).map_err(|e| e.to_string())
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Random, unique trace and span ids: a per-process random key hashed with a counter.
#[derive(Clone)]
struct IdGen {
    seed: std::collections::hash_map::RandomState,
    counter: Arc<AtomicU64>,
}

impl IdGen {
    fn new() -> IdGen {
        IdGen {
            seed: std::collections::hash_map::RandomState::new(),
            counter: Arc::new(AtomicU64::new(1)),
        }
    }

    fn next(&self) -> u64 {
        let mut h = self.seed.build_hasher();
        h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        h.write_u64(now_ns());
        match h.finish() {
            0 => 1,
            v => v,
        }
    }

    fn span_id(&self) -> u64 {
        self.next()
    }

    fn trace_id(&self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

/// Put a scenario's telemetry outcome into its result: the summary, and failed expectations
/// as a `telemetry` step that fails the scenario like any other step (a step that exits 0
/// but never emitted the expected spans fails here).
pub fn apply(
    test: &TestSpec,
    sc: &ScenarioSpec,
    outcome: ScenarioOutcome,
    result: &mut crate::results::ScenarioResult,
) {
    use crate::results::{Failure, ScenarioTelemetry, Status, StepResult};
    result.telemetry = Some(ScenarioTelemetry {
        spans: outcome.spans,
        errors: outcome.errors,
        dropped: outcome.dropped,
        failed_expectations: outcome.failures.len(),
        file: outcome
            .file
            .as_ref()
            .map(|p| crate::results::display_path(p)),
    });
    if let Some(e) = &outcome.write_error {
        let note = format!("spans not saved: {e}");
        result.message = Some(match result.message.take() {
            Some(m) => format!("{m}; {note}"),
            None => note,
        });
    }
    // An infrastructure error, timeout or cancellation says nothing about the spans.
    if outcome.failures.is_empty() || !matches!(result.status, Status::Passed | Status::Failed) {
        return;
    }
    let line = outcome.failures[0].line;
    let failures: Vec<Failure> = outcome
        .failures
        .iter()
        .map(|f| Failure {
            expectation: format!("{} (line {})", f.expectation, f.line),
            expected: f.expected.clone(),
            actual: f.actual.clone(),
        })
        .collect();
    let summary = failures
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    result.steps.push(StepResult {
        name: "telemetry".into(),
        line,
        service: String::new(),
        command: format!("check {}", crate::report::count_of(outcome.spans, "span")),
        status: Status::Failed,
        exit_code: None,
        duration_ms: 0.0,
        stdout: String::new(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        failures,
    });
    if result.status == Status::Passed {
        result.status = Status::Failed;
        result.message = Some(format!(
            "telemetry ({}:{line}) in scenario `{}`: {summary}",
            test.path.display(),
            sc.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::ServiceSpec;

    fn endpoints() -> Endpoints {
        Endpoints {
            http: "http://10.0.0.1:4318".into(),
            grpc: "http://10.0.0.1:4317".into(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_most_specific_protocol_variable_chooses_the_endpoint() {
        let none = env(&[]);
        let grpc = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        let http = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        let traces = env(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "GRPC")]);
        assert_eq!(protocol([&none, &none]), Protocol::HttpProtobuf);
        assert_eq!(protocol([&none, &grpc]), Protocol::Grpc);
        // The step's own setting wins over its service's.
        assert_eq!(protocol([&http, &grpc]), Protocol::HttpProtobuf);
        assert_eq!(protocol([&traces, &http]), Protocol::Grpc);
        assert_eq!(
            endpoints().for_protocol(Protocol::Grpc),
            "http://10.0.0.1:4317"
        );
    }

    #[test]
    fn a_service_that_selects_grpc_gets_the_grpc_endpoint() {
        let mut svc = ServiceSpec::named("api");
        let vars = service_otel_env(&svc, &endpoints(), "env-1");
        assert!(vars.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT=http://10.0.0.1:4318".to_string()));
        assert!(vars.contains(&"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf".to_string()));
        svc.env
            .insert("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "grpc".into());
        let vars = service_otel_env(&svc, &endpoints(), "env-1");
        assert!(vars.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT=http://10.0.0.1:4317".to_string()));
        assert!(
            !vars
                .iter()
                .any(|v| v.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=")),
            "the service's own setting is kept: {vars:?}"
        );
        assert!(vars.contains(&"OTEL_SERVICE_NAME=api".to_string()));
    }
}
