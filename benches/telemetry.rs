//! Telemetry hot paths: decoding and storing OTLP requests (protobuf and JSON, over HTTP and
//! gRPC), checking expectations on 10,000 spans, diffing two 10,000-span traces, and the
//! latency a scenario pays for collection when nothing is emitted and when 1,000 spans are.
//!
//! `cargo bench --bench telemetry`; figures in the README come from this.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clnrm::suite::{ScenarioSpec, StepSpec, TestSpec};
use clnrm::telemetry::collector::{Collector, Limits};
use clnrm::telemetry::diff::{diff, DiffOptions};
use clnrm::telemetry::expect::spec::*;
use clnrm::telemetry::expect::{check, CheckContext};
use clnrm::telemetry::model::{
    from_request, to_request, AttrValue, Attrs, Span, SpanKind, SpanStatus,
};
use clnrm::telemetry::Telemetry;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// A trace of `n` spans: one root, 10 children, 10 grandchildren each, leaves below.
fn trace(n: usize, salt: u64) -> Vec<Span> {
    let resource = Arc::new(Attrs::from([(
        "service.name".to_string(),
        AttrValue::Str("app".into()),
    )]));
    let mk = |id: u64, parent: Option<u64>, name: String, start: u64| Span {
        trace_id: 1,
        span_id: id,
        parent_span_id: parent,
        name,
        kind: SpanKind::Internal,
        start_ns: start,
        end_ns: start + 1_000 + (id * 7919 + salt) % 5_000,
        attrs: Attrs::from([
            ("http.method".to_string(), AttrValue::Str("GET".into())),
            ("n".to_string(), AttrValue::Int(id as i64 % 10)),
        ]),
        events: Vec::new(),
        status: SpanStatus::Ok,
        status_message: String::new(),
        resource: resource.clone(),
        scope: "bench".into(),
    };
    let mut out = vec![mk(1, None, "root".into(), 0)];
    for c in 0..10u64 {
        out.push(mk(2 + c, Some(1), format!("svc.{c}"), 10 + c));
    }
    for g in 0..100u64 {
        out.push(mk(
            100 + g,
            Some(2 + g / 10),
            format!("op.{}", g % 10),
            20 + g,
        ));
    }
    let mut id = 1_000u64;
    while out.len() < n {
        let parent = 100 + (id % 100);
        out.push(mk(id, Some(parent), format!("leaf.{}", id % 7), 100 + id));
        id += 1;
    }
    out
}

fn request(n: usize) -> ExportTraceServiceRequest {
    to_request(&trace(n, 0))
}

fn receiver(c: &mut Criterion) {
    let mut g = c.benchmark_group("receiver");
    g.throughput(Throughput::Elements(1_000));
    let req = request(1_000);
    let pb = req.encode_to_vec();
    let json = serde_json::to_vec(&req).expect("json");
    g.bench_function("decode+store 1000 spans, protobuf", |b| {
        b.iter(|| {
            let col = Collector::new(Limits::default());
            col.open(1, "e", 0);
            let r = ExportTraceServiceRequest::decode(&pb[..]).expect("decode");
            col.ingest(from_request(&r).0)
        })
    });
    g.bench_function("decode+store 1000 spans, json", |b| {
        b.iter(|| {
            let col = Collector::new(Limits::default());
            col.open(1, "e", 0);
            let r: ExportTraceServiceRequest = serde_json::from_slice(&json).expect("decode");
            col.ingest(from_request(&r).0)
        })
    });
    // Over HTTP on loopback, one connection per request (the SDK exporters' worst case).
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = rt
        .block_on(Telemetry::start(
            std::net::Ipv4Addr::LOCALHOST.into(),
            None,
            "bench",
            None,
            Limits {
                spans_per_scenario: usize::MAX,
                ..Limits::default()
            },
        ))
        .expect("receiver");
    let addr = t.addr();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
        pb.len()
    );
    g.bench_function("http post 1000 spans, protobuf", |b| {
        b.iter(|| {
            rt.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                s.write_all(head.as_bytes()).await.expect("write");
                s.write_all(&pb).await.expect("write");
                let mut out = Vec::new();
                s.read_to_end(&mut out).await.expect("read");
                assert!(out.starts_with(b"HTTP/1.1 200"));
            })
        })
    });
    // Over gRPC on loopback, one kept channel (how the SDKs' gRPC exporters send), the stored
    // spans taken out after each request so every request is stored in full.
    let grpc = rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", t.grpc_addr()))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        TraceServiceClient::new(ch)
    });
    let col = t.collector().clone();
    let _ = col.take_unattributed();
    g.bench_function("grpc export 1000 spans", |b| {
        b.iter(|| {
            let mut client = grpc.clone();
            let resp = rt
                .block_on(client.export(req.clone()))
                .expect("export")
                .into_inner();
            assert!(resp.partial_success.is_none());
            col.take_unattributed()
        })
    });
    g.finish();
    // The spans landed unattributed (no open scenario): drop them between iterations.
    let _ = t.take_warnings();
}

fn expectations() -> Expectations {
    let p = |s: &str| Pattern(s.into());
    Expectations {
        spans: vec![
            SpanExpect {
                name: p("op.*"),
                kind: Some(SpanKind::Internal),
                attrs_all: vec![("http.method".into(), "GET".into())],
                attrs_any: Vec::new(),
                events_any: Vec::new(),
                events_all: Vec::new(),
                duration_min_ms: None,
                duration_max_ms: Some(1.0),
                parent: Some(p("svc.*")),
                line: 1,
            },
            SpanExpect {
                name: p("leaf.6"),
                kind: None,
                attrs_all: vec![("n".into(), "9".into())],
                attrs_any: Vec::new(),
                events_any: Vec::new(),
                events_all: Vec::new(),
                duration_min_ms: None,
                duration_max_ms: None,
                parent: Some(p("op.*")),
                line: 2,
            },
        ],
        graph: Some(GraphExpect {
            must_include: vec![(p("root"), p("svc.3")), (p("op.2"), p("leaf.*"))],
            must_not_cross: vec![(p("leaf.*"), p("root"))],
            acyclic: true,
            line: 3,
        }),
        counts: Some(CountsExpect {
            spans_total: Some(Bound {
                gte: Some(10_000),
                ..Default::default()
            }),
            errors_total: Some(Bound {
                eq: Some(0),
                ..Default::default()
            }),
            by_name: vec![(
                p("svc.*"),
                Bound {
                    eq: Some(10),
                    ..Default::default()
                },
            )],
            ..Default::default()
        }),
        windows: vec![WindowExpect {
            outer: p("root"),
            contains: vec![p("svc.*")],
            line: 4,
        }],
        order: Some(OrderExpect {
            must_precede: vec![(p("root"), p("leaf.3"))],
            ..Default::default()
        }),
        status: Some(StatusExpect {
            all: Some(SpanStatus::Ok),
            ..Default::default()
        }),
        hermeticity: Some(HermeticityExpect {
            no_external_services: true,
            span_attrs_forbid_keys: vec!["db.password".into()],
            ..Default::default()
        }),
        flush_ms: None,
    }
}

fn checking(c: &mut Criterion) {
    let spans = trace(10_000, 0);
    let levels = vec![expectations()];
    let mut g = c.benchmark_group("expectations");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("check 10000 spans", |b| {
        b.iter(|| check(&levels, &spans, &CheckContext::default()))
    });
    g.finish();
}

fn diffing(c: &mut Criterion) {
    let old = trace(10_000, 0);
    let mut new = trace(10_000, 1);
    // Some structure moves too: renamed, reparented and failing spans.
    for (i, s) in new.iter_mut().enumerate().skip(200).step_by(97) {
        match i % 3 {
            0 => s.name.push_str(".v2"),
            1 => s.parent_span_id = Some(100),
            _ => s.status = SpanStatus::Error,
        }
    }
    let mut g = c.benchmark_group("diff");
    g.throughput(Throughput::Elements(20_000));
    g.bench_function("10000 vs 10000 spans", |b| {
        b.iter(|| diff(&old, &new, DiffOptions::default()))
    });
    g.finish();
}

/// What a scenario pays for collection: begin, one step span with its variables, finish
/// (no expectations, so no flush wait), with nothing emitted and with 1,000 spans received.
fn scenario_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = rt
        .block_on(Telemetry::start(
            std::net::Ipv4Addr::LOCALHOST.into(),
            None,
            "bench",
            None,
            Limits::default(),
        ))
        .expect("receiver");
    let step = StepSpec::shell("s", "app", "true");
    let test = TestSpec::named("t").with_scenario(ScenarioSpec::new("sc", vec![step.clone()]));
    let received = trace(1_000, 0);
    let mut g = c.benchmark_group("scenario");
    g.measurement_time(Duration::from_secs(3));
    for (label, spans) in [
        ("nothing emitted", Vec::new()),
        ("1000 spans emitted", received),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let sc = t.begin(&test, 0, 1, None);
                    let mut env = BTreeMap::new();
                    let span = sc.start_step(&step, &mut env);
                    if !spans.is_empty() {
                        let mut batch = spans.clone();
                        for s in &mut batch {
                            s.trace_id = sc.trace_id();
                        }
                        t.collector().ingest(batch);
                    }
                    sc.end_step(&step, span, true, Some(0));
                    sc.finish(&test.scenarios[0], true).await
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, receiver, checking, diffing, scenario_overhead);
criterion_main!(benches);
