//! The trace model: spans as clnrm checks, prints and diffs them, converted from and to the
//! official OTLP definitions (`opentelemetry-proto`), and saved as OTLP JSON lines.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Status};

/// An attribute value; arrays and maps are kept in their JSON text form.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Arrays, key-value lists and bytes, as JSON text.
    Other(String),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Str(s) | AttrValue::Other(s) => f.write_str(s),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
        }
    }
}

pub type Attrs = BTreeMap<String, AttrValue>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    pub fn parse(s: &str) -> Option<SpanKind> {
        let s = s.to_ascii_lowercase();
        let s = s.strip_prefix("span_kind_").unwrap_or(&s);
        [
            SpanKind::Unspecified,
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    fn from_proto(k: i32) -> SpanKind {
        match span::SpanKind::try_from(k).unwrap_or(span::SpanKind::Unspecified) {
            span::SpanKind::Unspecified => SpanKind::Unspecified,
            span::SpanKind::Internal => SpanKind::Internal,
            span::SpanKind::Server => SpanKind::Server,
            span::SpanKind::Client => SpanKind::Client,
            span::SpanKind::Producer => SpanKind::Producer,
            span::SpanKind::Consumer => SpanKind::Consumer,
        }
    }

    fn to_proto(self) -> i32 {
        (match self {
            SpanKind::Unspecified => span::SpanKind::Unspecified,
            SpanKind::Internal => span::SpanKind::Internal,
            SpanKind::Server => span::SpanKind::Server,
            SpanKind::Client => span::SpanKind::Client,
            SpanKind::Producer => span::SpanKind::Producer,
            SpanKind::Consumer => span::SpanKind::Consumer,
        }) as i32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "unset",
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<SpanStatus> {
        match s.to_ascii_lowercase().as_str() {
            "unset" => Some(SpanStatus::Unset),
            "ok" => Some(SpanStatus::Ok),
            "error" => Some(SpanStatus::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    pub name: String,
    pub time_ns: u64,
    pub attrs: Attrs,
}

/// One span. Ids are kept as integers (hex only when printed) so that matching and hashing
/// thousands of spans stays cheap.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: u128,
    pub span_id: u64,
    /// `None` for a root span.
    pub parent_span_id: Option<u64>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attrs: Attrs,
    pub events: Vec<SpanEvent>,
    pub status: SpanStatus,
    pub status_message: String,
    /// Resource attributes of the emitting process (shared by the spans of one batch).
    pub resource: Arc<Attrs>,
    /// Instrumentation scope name.
    pub scope: String,
}

impl Span {
    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    /// `service.name` of the emitting resource, or `?`.
    pub fn service(&self) -> &str {
        match self.resource.get("service.name") {
            Some(AttrValue::Str(s)) => s,
            _ => "?",
        }
    }
}

pub fn trace_hex(id: u128) -> String {
    format!("{id:032x}")
}

pub fn span_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn id128(b: &[u8]) -> Option<u128> {
    let a: [u8; 16] = b.try_into().ok()?;
    Some(u128::from_be_bytes(a))
}

fn id64(b: &[u8]) -> Option<u64> {
    let a: [u8; 8] = b.try_into().ok()?;
    Some(u64::from_be_bytes(a))
}

fn attr_value(v: Option<&AnyValue>) -> AttrValue {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s.clone()),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(*d),
        Some(other) => AttrValue::Other(
            serde_json::to_string(&AnyValue {
                value: Some(other.clone()),
            })
            .unwrap_or_default(),
        ),
        None => AttrValue::Other(String::new()),
    }
}

fn attrs_from(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| (kv.key.clone(), attr_value(kv.value.as_ref())))
        .collect()
}

fn attrs_to(attrs: &Attrs) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|(k, v)| {
            let value = match v {
                AttrValue::Str(s) => Some(any_value::Value::StringValue(s.clone())),
                AttrValue::Bool(b) => Some(any_value::Value::BoolValue(*b)),
                AttrValue::Int(i) => Some(any_value::Value::IntValue(*i)),
                AttrValue::Double(d) => Some(any_value::Value::DoubleValue(*d)),
                AttrValue::Other(text) => serde_json::from_str::<AnyValue>(text)
                    .ok()
                    .and_then(|a| a.value)
                    .or_else(|| Some(any_value::Value::StringValue(text.clone()))),
            };
            KeyValue {
                key: k.clone(),
                value: Some(AnyValue { value }),
                ..Default::default()
            }
        })
        .collect()
}

/// Why a span of a request was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub count: usize,
    pub reason: String,
}

/// The spans of an export request. Spans with invalid ids (not 16/8 bytes) are rejected, as the
/// OTLP specification asks, and counted.
pub fn from_request(req: &ExportTraceServiceRequest) -> (Vec<Span>, Option<Rejected>) {
    let mut out = Vec::new();
    let mut bad = 0usize;
    for rs in &req.resource_spans {
        let resource = Arc::new(
            rs.resource
                .as_ref()
                .map(|r| attrs_from(&r.attributes))
                .unwrap_or_default(),
        );
        for ss in &rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for s in &ss.spans {
                let (Some(trace_id), Some(span_id)) = (id128(&s.trace_id), id64(&s.span_id)) else {
                    bad += 1;
                    continue;
                };
                let parent_span_id = id64(&s.parent_span_id).filter(|p| *p != 0);
                let (status, status_message) = match &s.status {
                    Some(st) => (
                        match status::StatusCode::try_from(st.code) {
                            Ok(status::StatusCode::Ok) => SpanStatus::Ok,
                            Ok(status::StatusCode::Error) => SpanStatus::Error,
                            _ => SpanStatus::Unset,
                        },
                        st.message.clone(),
                    ),
                    None => (SpanStatus::Unset, String::new()),
                };
                out.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    name: s.name.clone(),
                    kind: SpanKind::from_proto(s.kind),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano.max(s.start_time_unix_nano),
                    attrs: attrs_from(&s.attributes),
                    events: s
                        .events
                        .iter()
                        .map(|e| SpanEvent {
                            name: e.name.clone(),
                            time_ns: e.time_unix_nano,
                            attrs: attrs_from(&e.attributes),
                        })
                        .collect(),
                    status,
                    status_message,
                    resource: resource.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    let rejected = (bad > 0).then(|| Rejected {
        count: bad,
        reason: format!(
            "{} with an invalid trace or span id",
            crate::report::count_of(bad, "span")
        ),
    });
    (out, rejected)
}

/// An export request holding `spans`, grouped by resource and scope in first-seen order.
pub fn to_request(spans: &[Span]) -> ExportTraceServiceRequest {
    type ByScope<'a> = Vec<(String, Vec<&'a Span>)>;
    let mut groups: Vec<(Arc<Attrs>, ByScope<'_>)> = Vec::new();
    for s in spans {
        let g = match groups
            .iter()
            .position(|(r, _)| Arc::ptr_eq(r, &s.resource) || **r == *s.resource)
        {
            Some(i) => i,
            None => {
                groups.push((s.resource.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[g].1;
        match scopes.iter_mut().find(|(n, _)| *n == s.scope) {
            Some((_, v)) => v.push(s),
            None => scopes.push((s.scope.clone(), vec![s])),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|(resource, scopes)| ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs_to(&resource),
                    ..Default::default()
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|(scope, spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: scope,
                            ..Default::default()
                        }),
                        spans: spans.into_iter().map(span_to_proto).collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn span_to_proto(s: &Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: s.trace_id.to_be_bytes().to_vec(),
        span_id: s.span_id.to_be_bytes().to_vec(),
        parent_span_id: s
            .parent_span_id
            .map(|p| p.to_be_bytes().to_vec())
            .unwrap_or_default(),
        name: s.name.clone(),
        kind: s.kind.to_proto(),
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: attrs_to(&s.attrs),
        events: s
            .events
            .iter()
            .map(|e| span::Event {
                time_unix_nano: e.time_ns,
                name: e.name.clone(),
                attributes: attrs_to(&e.attrs),
                dropped_attributes_count: 0,
            })
            .collect(),
        status: match s.status {
            SpanStatus::Unset if s.status_message.is_empty() => None,
            st => Some(Status {
                message: s.status_message.clone(),
                code: match st {
                    SpanStatus::Unset => status::StatusCode::Unset,
                    SpanStatus::Ok => status::StatusCode::Ok,
                    SpanStatus::Error => status::StatusCode::Error,
                } as i32,
            }),
        },
        ..Default::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not an OTLP JSON export request: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

/// Write spans as OTLP JSON lines (one export request per resource group and line), the
/// format of the OpenTelemetry Collector's file exporter.
pub fn write_jsonl(spans: &[Span], mut w: impl Write) -> std::io::Result<()> {
    let req = to_request(spans);
    for rs in req.resource_spans {
        let one = ExportTraceServiceRequest {
            resource_spans: vec![rs],
        };
        serde_json::to_writer(&mut w, &one)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Read OTLP JSON lines (blank lines skipped).
pub fn read_jsonl(path: &std::path::Path) -> Result<Vec<Span>, TraceFileError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| TraceFileError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut spans = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| TraceFileError::Io {
            path: shown.clone(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let req: ExportTraceServiceRequest =
            serde_json::from_str(&line).map_err(|e| TraceFileError::Parse {
                path: shown.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
        spans.extend(from_request(&req).0);
    }
    Ok(spans)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span for unit tests: `id` and `parent` are span ids within trace 1.
    pub(crate) fn span(id: u64, parent: Option<u64>, name: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: 1,
            span_id: id,
            parent_span_id: parent,
            name: name.into(),
            kind: SpanKind::Internal,
            start_ns: start,
            end_ns: end,
            attrs: Attrs::new(),
            events: Vec::new(),
            status: SpanStatus::Unset,
            status_message: String::new(),
            resource: Arc::new(Attrs::from([(
                "service.name".to_string(),
                AttrValue::Str("svc".into()),
            )])),
            scope: "test".into(),
        }
    }

    #[test]
    fn jsonl_round_trips_through_the_official_definitions() {
        let mut a = span(1, None, "root", 10, 50);
        a.attrs
            .insert("http.method".into(), AttrValue::Str("GET".into()));
        a.attrs.insert("n".into(), AttrValue::Int(3));
        a.status = SpanStatus::Error;
        a.status_message = "boom".into();
        let mut b = span(2, Some(1), "child", 20, 30);
        b.kind = SpanKind::Client;
        b.events.push(SpanEvent {
            name: "retry".into(),
            time_ns: 25,
            attrs: Attrs::new(),
        });
        let mut buf = Vec::new();
        write_jsonl(&[a.clone(), b.clone()], &mut buf).expect("write");
        let text = String::from_utf8(buf).expect("utf8");
        // OTLP JSON: ids in hex, camelCase keys.
        assert!(
            text.contains("\"traceId\":\"00000000000000000000000000000001\""),
            "{text}"
        );
        assert!(
            text.contains("\"parentSpanId\":\"0000000000000001\""),
            "{text}"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("t.jsonl");
        std::fs::write(&p, &text).expect("write file");
        let back = read_jsonl(&p).expect("read");
        assert_eq!(back, vec![a, b]);
    }

    #[test]
    fn invalid_ids_are_rejected_and_counted() {
        let mut req = to_request(&[span(1, None, "ok", 1, 2)]);
        let mut bad = req.resource_spans[0].scope_spans[0].spans[0].clone();
        bad.trace_id = vec![1, 2, 3];
        req.resource_spans[0].scope_spans[0].spans.push(bad);
        let (spans, rejected) = from_request(&req);
        assert_eq!(spans.len(), 1);
        assert_eq!(rejected.map(|r| r.count), Some(1));
    }
}
