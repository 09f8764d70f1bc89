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
    let enc = match ctype.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            return reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content type `{other}`: send `application/x-protobuf` or `application/json`"
                ),
                collector,
            )
        }
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
    let declared = header(hyper::header::CONTENT_LENGTH).parse::<u64>().ok();
    if declared.is_some_and(|n| n > limit as u64) {
        return reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit} bytes"),
            collector,
        );
    }
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
    let resp = store(&req, collector);
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

/// Attribute and store the spans of one export request (whatever transport brought it) and
/// say which were rejected, as OTLP's partial success.
pub(crate) fn store(
    req: &ExportTraceServiceRequest,
    collector: &Collector,
) -> ExportTraceServiceResponse {
    let (spans, invalid) = from_request(req);
    let got = collector.ingest(spans);
    let mut rejected = got.dropped;
    let mut reasons = Vec::new();
    if got.dropped > 0 {
        reasons.push(format!(
            "{} over the per-scenario cap",
            crate::report::count_of(got.dropped, "span")
        ));
    }
    if let Some(r) = invalid {
        rejected += r.count;
        collector.warn(format!("telemetry: {}", r.reason));
        reasons.push(r.reason);
    }
    ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: reasons.join("; "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::collector::Limits;
    use crate::telemetry::model::{tests::span, to_request};
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One raw HTTP/1.1 request; returns the status code and the body.
    async fn post(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.expect("write head");
        // An oversized body is refused on its declared length, before it is read: do not
        // send it (the server closes, and unread data would reset the connection).
        if body.len() <= 2048 {
            s.write_all(body).await.expect("write body");
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out);
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|b| b.1.as_bytes().to_vec())
            .unwrap_or_default();
        (code, body)
    }

    async fn receiver(limits: Limits) -> (Receiver, Collector, u64) {
        let c = Collector::new(limits);
        let key = c.open(1, "env", 0);
        let r = Receiver::start(std::net::Ipv4Addr::LOCALHOST.into(), c.clone())
            .await
            .expect("bind");
        (r, c, key)
    }

    fn payload(n: u64) -> ExportTraceServiceRequest {
        to_request(
            &(1..=n)
                .map(|i| span(i, None, "s", 1, 2))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn protobuf_json_and_gzip_bodies_are_stored() {
        let (r, c, key) = receiver(Limits::default()).await;
        let pb = payload(3).encode_to_vec();
        let (code, body) = post(
            r.addr(),
            "/v1/traces",
            &[("content-type", "application/x-protobuf")],
            &pb,
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(
            ExportTraceServiceResponse::decode(&body[..]).expect("response"),
            Default::default()
        );
        let json = serde_json::to_vec(&payload(2)).expect("json");
        let (code, _) = post(
            r.addr(),
            "/v1/traces",
            &[("content-type", "application/json")],
            &json,
        )
        .await;
        assert_eq!(code, 200);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&pb).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let (code, _) = post(
            r.addr(),
            "/v1/traces",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            &gz,
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(c.count(key), 8);
        assert!(c.take_warnings().is_empty());
    }

    #[tokio::test]
    async fn bad_input_gets_a_4xx_and_a_warning_never_a_crash() {
        let limits = Limits {
            body_bytes: 1024,
            spans_per_scenario: 2,
            ..Limits::default()
        };
        let (r, c, key) = receiver(limits).await;
        let pb = |h: &'static str| [("content-type", h)];
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            Vec<u8>,
            u16,
        );
        let cases: Vec<Case> = vec![
            (
                "/v1/traces",
                pb("application/x-protobuf").to_vec(),
                vec![0xff, 0xff, 0xff],
                400,
            ),
            (
                "/v1/traces",
                pb("application/json").to_vec(),
                b"{\"resourceSpans\": 3}".to_vec(),
                400,
            ),
            (
                "/v1/traces",
                pb("text/plain").to_vec(),
                b"hello".to_vec(),
                415,
            ),
            (
                "/v1/traces",
                pb("application/x-protobuf").to_vec(),
                vec![0; 4096],
                413,
            ),
            (
                "/v1/traces",
                vec![
                    ("content-type", "application/x-protobuf"),
                    ("content-encoding", "gzip"),
                ],
                b"not gzip".to_vec(),
                400,
            ),
            (
                "/v1/traces",
                vec![
                    ("content-type", "application/x-protobuf"),
                    ("content-encoding", "br"),
                ],
                Vec::new(),
                415,
            ),
            (
                "/v1/metrics",
                pb("application/x-protobuf").to_vec(),
                Vec::new(),
                404,
            ),
        ];
        for (path, headers, body, want) in cases {
            let (code, _) = post(r.addr(), path, &headers, &body).await;
            assert_eq!(code, want, "{path} {headers:?}");
        }
        // A gzip bomb: small on the wire, over the limit once inflated.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 1 << 18]).expect("gzip");
        let bomb = gz.finish().expect("gzip");
        assert!(bomb.len() < 1024);
        let (code, _) = post(
            r.addr(),
            "/v1/traces",
            &[
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            &bomb,
        )
        .await;
        assert_eq!(code, 413);
        // Over the per-scenario cap: accepted with a partial success naming the rejects.
        let (code, body) = post(
            r.addr(),
            "/v1/traces",
            &[("content-type", "application/x-protobuf")],
            &payload(5).encode_to_vec(),
        )
        .await;
        assert_eq!(code, 200);
        let resp = ExportTraceServiceResponse::decode(&body[..]).expect("response");
        assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(3));
        assert_eq!(c.count(key), 2);
        let w = c.take_warnings();
        assert_eq!(
            w.iter()
                .filter(|w| w.contains("rejected an OTLP request"))
                .count(),
            7,
            "{w:#?}"
        );
        assert!(w.iter().any(|w| w.contains("span cap of 2")), "{w:#?}");
    }

    /// Seeds of the decoder fuzzing: `tests/corpus/otlp/` (written from [`payload`] with
    /// `CLNRM_UPDATE_FIXTURES=1`, plus hand-written JSON).
    fn otlp_corpus() -> Vec<(bool, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/otlp");
        if std::env::var("CLNRM_UPDATE_FIXTURES").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("three-spans.pb"), payload(3).encode_to_vec()).expect("pb");
            let json = serde_json::to_vec_pretty(&payload(2)).expect("json");
            std::fs::write(dir.join("two-spans.json"), json).expect("json");
        }
        let mut seeds: Vec<(bool, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("corpus folder")
            .map(|e| e.expect("entry").path())
            .map(|p| {
                let json = p.extension().is_some_and(|x| x == "json");
                (json, std::fs::read(&p).expect("seed"))
            })
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 3, "corpus seeds missing");
        seeds
    }

    #[test]
    fn every_corpus_seed_decodes_to_spans() {
        for (json, body) in otlp_corpus() {
            let req = if json {
                serde_json::from_slice::<ExportTraceServiceRequest>(&body).expect("OTLP JSON")
            } else {
                ExportTraceServiceRequest::decode(&body[..]).expect("OTLP protobuf")
            };
            let (spans, rejected) = from_request(&req);
            assert!(!spans.is_empty() && rejected.is_none(), "{json} seed");
        }
    }

    proptest::proptest! {
        /// Mutated and truncated bodies, protobuf and JSON: decoding and conversion into the
        /// trace model return errors or spans, never a panic.
        #[test]
        fn mutated_bodies_never_panic_the_decoder(
            seed in 0usize..64,
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..24),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let corpus = otlp_corpus();
            let (json, mut body) = corpus[seed % corpus.len()].clone();
            for (i, v) in flips {
                if !body.is_empty() {
                    let n = body.len();
                    body[i % n] = v;
                }
            }
            body.truncate(cut % (body.len() + 1));
            let decoded = if json {
                serde_json::from_slice::<ExportTraceServiceRequest>(&body).ok()
            } else {
                ExportTraceServiceRequest::decode(&body[..]).ok()
            };
            if let Some(req) = decoded {
                let (spans, _) = from_request(&req);
                proptest::prop_assert!(spans.len() <= 1_000_000);
            }
        }
    }
}
