//! The embedded OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`
//! served by tonic with the generated server of `opentelemetry-proto`, gzip accepted, message
//! size bounded by the same limit as an HTTP body. Bad input gets a gRPC error status (decided
//! by tonic's decoder) and a run warning, never a crash.

use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http;

use super::collector::Collector;
use super::receiver::store;

/// A running gRPC receiver; dropping the handle stops it.
#[derive(Debug)]
pub struct GrpcReceiver {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

struct Export {
    collector: Collector,
}

#[tonic::async_trait]
impl TraceService for Export {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(store(
            request.get_ref(),
            &self.collector,
        )))
    }
}

impl GrpcReceiver {
    /// Listen on `ip` (port picked free) and serve until dropped.
    pub async fn start(ip: std::net::IpAddr, collector: Collector) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stop_rx) = watch::channel(false);
        let limit = collector.limits().body_bytes;
        let svc = TraceServiceServer::new(Export {
            collector: collector.clone(),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
        // Errors of the decoder (malformed protobuf, a message over the limit, an unknown
        // compression) never reach `export`: they leave as a trailers-only response with the
        // status in its headers. Record those as run warnings, like the HTTP receiver's 4xx.
        let warn =
            tower::util::MapResponseLayer::new(move |resp: http::Response<tonic::body::Body>| {
                if let Some(status) = tonic::Status::from_header_map(resp.headers()) {
                    if status.code() != tonic::Code::Ok {
                        collector.warn(format!(
                            "telemetry: rejected an OTLP/gRPC request ({:?}): {}",
                            status.code(),
                            status.message()
                        ));
                    }
                }
                resp
            });
        let server = tonic::transport::Server::builder()
            .layer(warn)
            .add_service(svc)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                },
            );
        tokio::spawn(server);
        Ok(GrpcReceiver { addr, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for GrpcReceiver {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::collector::Limits;
    use crate::telemetry::model::{tests::span, to_request};
    use bytes::{Buf, BufMut};
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    /// Sends and receives raw bytes, to put malformed messages on the wire.
    #[derive(Default)]
    struct Raw;
    impl Encoder for Raw {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }
    impl Decoder for Raw {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
            Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
        }
    }
    impl Codec for Raw {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = Raw;
        type Decoder = Raw;
        fn encoder(&mut self) -> Raw {
            Raw
        }
        fn decoder(&mut self) -> Raw {
            Raw
        }
    }

    async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    async fn raw_export(addr: SocketAddr, body: Vec<u8>) -> tonic::Status {
        let mut grpc = tonic::client::Grpc::new(channel(addr).await);
        grpc.ready().await.expect("ready");
        let path = http::uri::PathAndQuery::from_static(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        );
        match grpc.unary(tonic::Request::new(body), path, Raw).await {
            Ok(r) => panic!("accepted: {:?}", r.into_inner()),
            Err(s) => s,
        }
    }

    #[tokio::test]
    async fn grpc_exports_are_stored_and_bad_messages_get_an_error_status() {
        let c = Collector::new(Limits {
            body_bytes: 4096,
            spans_per_scenario: 4,
            ..Limits::default()
        });
        let key = c.open(1, "env", 0);
        let r = GrpcReceiver::start(std::net::Ipv4Addr::LOCALHOST.into(), c.clone())
            .await
            .expect("bind");
        let mut client = TraceServiceClient::new(channel(r.addr()).await);
        let req = |n: u64| {
            to_request(
                &(1..=n)
                    .map(|i| span(i, None, "s", 1, 2))
                    .collect::<Vec<_>>(),
            )
        };
        let resp = client.export(req(3)).await.expect("export").into_inner();
        assert_eq!(resp, ExportTraceServiceResponse::default());
        // Gzip-compressed requests are accepted too.
        let mut gz = TraceServiceClient::new(channel(r.addr()).await)
            .send_compressed(CompressionEncoding::Gzip);
        let resp = gz.export(req(3)).await.expect("gzip export").into_inner();
        // Over the per-scenario cap of 4: a partial success naming the rejects.
        assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(2));
        assert_eq!(c.count(key), 4);
        assert!(
            c.take_warnings().iter().all(|w| !w.contains("rejected")),
            "no request was refused"
        );

        // Malformed protobuf: field 1 (`resource_spans`) as a varint.
        let bad = raw_export(r.addr(), vec![0x08, 0x01]).await;
        assert_eq!(bad.code(), tonic::Code::Internal, "{bad:?}");
        // Garbage that is not protobuf at all.
        let bad = raw_export(r.addr(), vec![0xff; 16]).await;
        assert_eq!(bad.code(), tonic::Code::Internal, "{bad:?}");
        // Over the message size limit.
        let bad = raw_export(r.addr(), vec![0; 8192]).await;
        assert_eq!(bad.code(), tonic::Code::OutOfRange, "{bad:?}");
        // The receiver still serves after all that.
        let resp = client.export(req(1)).await.expect("export").into_inner();
        assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(1));
        let w = c.take_warnings();
        assert_eq!(
            w.iter()
                .filter(|w| w.contains("rejected an OTLP/gRPC request"))
                .count(),
            3,
            "{w:#?}"
        );
    }
}
