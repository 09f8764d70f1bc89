//! The embedded OTLP/HTTP receiver: `POST /v1/traces` with protobuf or JSON bodies, gzip
//! accepted, bounded body size. Bad input gets a 4xx and a run warning, never a crash.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::collector::Collector;
use super::model::from_request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// A running receiver; dropping the handle stops it.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Receiver {
    /// Listen on `ip` (port picked free) and serve until dropped.
    pub async fn start(ip: std::net::IpAddr, collector: Collector) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(serve(listener, collector, stop_rx));
        Ok(Receiver { addr, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn serve(listener: TcpListener, collector: Collector, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: keep serving the connections we have.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let collector = collector.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let collector = collector.clone();
                async move { Ok::<_, Infallible>(handle(req, &collector).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A 4xx with a plain-text reason, also recorded as a run warning.
fn reject(status: StatusCode, msg: String, collector: &Collector) -> Response<Full<Bytes>> {
    collector.warn(format!(
        "telemetry: rejected an OTLP request ({status}): {msg}"
    ));
    reply(status, "text/plain", msg.into_bytes())
}

async fn handle(req: Request<Incoming>, collector: &Collector) -> Response<Full<Bytes>> {
    if req.uri().path() != "/v1/traces" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"only /v1/traces".to_vec(),
        );
    }
    if req.method() != hyper::Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"POST only".to_vec(),
        );
    }
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let ctype = header(hyper::header::CONTENT_TYPE);
    let enc =
        match ctype.split(';').next().unwrap_or("").trim() {
            "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
            "application/json" => Encoding::Json,
            other => return reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type `{other}`: send `application/x-protobuf` or `application/json`"
                ),
                collector,
            ),
        };
    let gzip = match header(hyper::header::CONTENT_ENCODING).as_str() {
        "" | "identity" => false,
        "gzip" => true,
        other => {
            return reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding `{other}`: send `gzip` or none"),
                collector,
            )
        }
    };
    let limit = collector.limits().body_bytes;
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let too_big = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_big {
                reject(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than {limit} bytes"),
                    collector,
                )
            } else {
                reject(
                    StatusCode::BAD_REQUEST,
                    format!("reading body: {e}"),
                    collector,
                )
            };
        }
    };
    let body = if gzip {
        let mut out = Vec::new();
        let read = flate2::read::GzDecoder::new(&body[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out);
        match read {
            Ok(n) if n > limit => {
                return reject(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body larger than {limit} bytes"),
                    collector,
                )
            }
            Ok(_) => Bytes::from(out),
            Err(e) => {
                return reject(
                    StatusCode::BAD_REQUEST,
                    format!("bad gzip body: {e}"),
                    collector,
                )
            }
        }
    } else {
        body
    };
    let decoded = match enc {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|e| format!("bad protobuf: {e}"))
        }
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&body)
            .map_err(|e| format!("bad OTLP JSON: {e}")),
    };
    let req = match decoded {
        Ok(r) => r,
        Err(msg) => return reject(StatusCode::BAD_REQUEST, msg, collector),
    };
    let (spans, invalid) = from_request(&req);
    let got = collector.ingest(spans);
    let mut rejected = got.dropped;
    let mut reasons = Vec::new();
    if got.dropped > 0 {
        reasons.push(format!("{} span(s) over the per-scenario cap", got.dropped));
    }
    if let Some(r) = invalid {
        rejected += r.count;
        collector.warn(format!("telemetry: {}", r.reason));
        reasons.push(r.reason);
    }
    let resp = ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: reasons.join("; "),
        }),
    };
    match enc {
        Encoding::Protobuf => reply(
            StatusCode::OK,
            "application/x-protobuf",
            resp.encode_to_vec(),
        ),
        Encoding::Json => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&resp).unwrap_or_else(|_| b"{}".to_vec()),
        ),
    }
}
