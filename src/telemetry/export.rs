//! `--otel-endpoint`: clnrm's own spans of a run (a `clnrm.run` root, a `clnrm.scenario` child
//! per scenario attempt, a `clnrm.step:<name>` child per step) sent to the user's collector over
//! OTLP/HTTP protobuf at the end of the run. An export that fails is a warning, never a verdict.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use prost::Message;

use super::model::{to_request, AttrValue, Attrs, Span, SpanKind, SpanStatus};

/// Name of the root span of a run.
pub const RUN_SPAN: &str = "clnrm.run";

/// How long one export may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why an `--otel-endpoint` value cannot be used.
pub fn check_endpoint(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("`--otel-endpoint {url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "`--otel-endpoint {url}`: scheme `{other}` is not supported; use `http://` (OTLP/HTTP protobuf, e.g. a collector on this host or a sidecar)"
            ))
        }
        None => {
            return Err(format!(
                "`--otel-endpoint {url}` has no scheme: write `http://host:4318`"
            ))
        }
    }
    if uri.host().is_none() {
        return Err(format!("`--otel-endpoint {url}` has no host"));
    }
    Ok(uri)
}

/// The URL the spans are posted to: the endpoint with `/v1/traces` appended (the OTel spec's
/// rule for `OTEL_EXPORTER_OTLP_ENDPOINT`) unless it already ends with it.
pub fn traces_url(endpoint: &Uri) -> String {
    let s = endpoint.to_string();
    let trimmed = s.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        trimmed.to_string()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// One trace of the run: `own` (the scenario roots and their step spans, each scenario in a
/// trace of its own while the run lasts) moved into the run's trace, the scenario roots under
/// a new `clnrm.run` span from `start_ns` to `end_ns`.
pub fn run_tree(
    mut own: Vec<Span>,
    run_id: &str,
    ids: (u128, u64),
    start_ns: u64,
    end_ns: u64,
    ok: bool,
) -> Vec<Span> {
    let (trace_id, span_id) = ids;
    let resource = own.first().map(|s| s.resource.clone()).unwrap_or_default();
    for s in &mut own {
        s.trace_id = trace_id;
        if s.parent_span_id.is_none() {
            s.parent_span_id = Some(span_id);
        }
    }
    own.insert(
        0,
        Span {
            trace_id,
            span_id,
            parent_span_id: None,
            name: RUN_SPAN.into(),
            kind: SpanKind::Internal,
            start_ns,
            end_ns,
            attrs: Attrs::from([("clnrm.run".to_string(), AttrValue::Str(run_id.into()))]),
            events: Vec::new(),
            status: if ok {
                SpanStatus::Ok
            } else {
                SpanStatus::Error
            },
            status_message: String::new(),
            resource,
            scope: "clnrm".into(),
        },
    );
    own
}

/// POST `spans` as one OTLP/HTTP protobuf request to `endpoint`.
pub async fn send(endpoint: &Uri, spans: &[Span]) -> Result<(), String> {
    let url: Uri = traces_url(endpoint)
        .parse()
        .map_err(|e| format!("bad URL: {e}"))?;
    let host = url.host().unwrap_or("localhost").to_string();
    let port = url.port_u16().unwrap_or(80);
    let body = to_request(spans).encode_to_vec();
    let go = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {host}:{port}: {e}"))?;
        tokio::spawn(conn);
        let path = url.path_and_query().map_or("/v1/traces", |p| p.as_str());
        let authority = url.authority().map_or(host.clone(), |a| a.to_string());
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST {url}: the collector answered {}",
                resp.status()
            ))
        }
    };
    tokio::time::timeout(TIMEOUT, go)
        .await
        .map_err(|_| format!("POST {url}: no answer within {} s", TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::model::tests::span;

    #[test]
    fn endpoints_are_checked_and_get_the_traces_path() {
        let ok = check_endpoint("http://127.0.0.1:4318").expect("valid");
        assert_eq!(traces_url(&ok), "http://127.0.0.1:4318/v1/traces");
        let full = check_endpoint("http://c:4318/v1/traces").expect("valid");
        assert_eq!(traces_url(&full), "http://c:4318/v1/traces");
        assert!(check_endpoint("https://c:4318")
            .unwrap_err()
            .contains("scheme `https` is not supported"));
        assert!(check_endpoint("c:4318").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[test]
    fn scenario_traces_join_one_run_trace_under_the_run_span() {
        let mut a = span(1, None, "clnrm.scenario", 10, 20);
        a.trace_id = 7;
        let mut a1 = span(2, Some(1), "clnrm.step:x", 11, 12);
        a1.trace_id = 7;
        let mut b = span(3, None, "clnrm.scenario", 10, 30);
        b.trace_id = 8;
        let tree = run_tree(vec![a, a1, b], "r1", (99, 50), 5, 40, true);
        assert_eq!(tree.len(), 4);
        assert!(tree.iter().all(|s| s.trace_id == 99));
        assert_eq!(
            (tree[0].name.as_str(), tree[0].parent_span_id),
            (RUN_SPAN, None)
        );
        assert_eq!(tree[1].parent_span_id, Some(50));
        assert_eq!(tree[2].parent_span_id, Some(1));
        assert_eq!(tree[3].parent_span_id, Some(50));
    }
}
