//! A small program instrumented with the Rust OpenTelemetry SDK (`opentelemetry_sdk` with the
//! `opentelemetry-otlp` exporters): the code under test of the Docker telemetry tests, built
//! static and copied into a derived test image.
//!
//! ```text
//! otel_emitter ROOT [CHILD...]
//! ```
//!
//! Emits a span `ROOT` (kind server, attributes `emitter.children` and `emitter.protocol`) with one client span per
//! `CHILD` (attribute `emitter.index`, an event `emitter.event`), then flushes and exits 0; a
//! failed export exits 1. Everything else comes from the standard environment, as in any
//! instrumented program: `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`
//! (`http/protobuf`, the default, or `grpc`), `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, and `TRACEPARENT` / `TRACESTATE` (the W3C trace context in the
//! environment-variable carrier), so the spans join the trace of whoever started it.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

/// The environment-variable carrier of the OTel spec: the W3C keys, upper-cased.
struct EnvCarrier(HashMap<String, String>);

impl EnvCarrier {
    fn from_env() -> Self {
        let keys = ["traceparent", "tracestate"];
        EnvCarrier(
            keys.iter()
                .filter_map(|k| {
                    let v = std::env::var(k.to_uppercase()).ok()?;
                    Some((k.to_string(), v))
                })
                .collect(),
        )
    }
}

impl Extractor for EnvCarrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(&key.to_lowercase()).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The OTLP exporter, counting failed exports: the SDK only logs them, and the emitter must
/// not exit 0 when its spans never left.
#[derive(Debug)]
struct Counted {
    inner: opentelemetry_otlp::SpanExporter,
    failures: Arc<AtomicUsize>,
}

impl SpanExporter for Counted {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(e) = &result {
            eprintln!("otel_emitter: export failed: {e}");
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

fn exporter(protocol: &str) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let built = match protocol {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build(),
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build(),
        other => return Err(format!("unsupported OTEL_EXPORTER_OTLP_PROTOCOL `{other}`")),
    };
    built.map_err(|e| format!("cannot build the {protocol} exporter: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((root, children)) = args.split_first() else {
        eprintln!("usage: otel_emitter ROOT [CHILD...]");
        return ExitCode::from(2);
    };
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "http/protobuf".to_string());

    // Both exporters run on tokio (hyper's client, tonic's channel); the simple processor
    // exports each span as it ends, from this thread, inside the runtime's context.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let _context = runtime.enter();
    let inner = match exporter(&protocol) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("otel_emitter: {e}");
            return ExitCode::from(2);
        }
    };
    let failures = Arc::new(AtomicUsize::new(0));
    let provider = SdkTracerProvider::builder()
        // The builder's default resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
        .with_resource(Resource::builder().build())
        .with_simple_exporter(Counted {
            inner,
            failures: failures.clone(),
        })
        .build();
    let tracer = provider.tracer("otel_emitter");

    let parent = TraceContextPropagator::new().extract(&EnvCarrier::from_env());
    let root_span = tracer
        .span_builder(root.clone())
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("emitter.children", children.len() as i64),
            KeyValue::new("emitter.protocol", protocol.clone()),
        ])
        .start_with_context(&tracer, &parent);
    let root_cx = parent.with_span(root_span);
    for (i, name) in children.iter().enumerate() {
        let mut child = tracer
            .span_builder(name.clone())
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("emitter.index", i as i64)])
            .start_with_context(&tracer, &root_cx);
        child.add_event(
            "emitter.event",
            vec![KeyValue::new("emitter.child", name.clone())],
        );
        child.end();
    }
    root_cx.span().end();

    let flushed = provider.force_flush().and(provider.shutdown());
    let failed = failures.load(Ordering::SeqCst);
    match flushed {
        Ok(()) if failed == 0 => {
            println!(
                "otel_emitter: {} span(s) sent over {protocol}",
                children.len() + 1
            );
            ExitCode::SUCCESS
        }
        Ok(()) => {
            eprintln!("otel_emitter: {failed} export(s) failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("otel_emitter: flush failed: {e}");
            ExitCode::FAILURE
        }
    }
}
