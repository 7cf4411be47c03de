//! gRPC over an already-established stream, as server or as caller.

use crate::{LinkTiming, NetError};
use cocoon_proto::MAX_MESSAGE_BYTES;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint, Uri};

/// Per-stream flow-control window: how much one request may buffer before its sender waits.
const STREAM_WINDOW: u32 = 1024 * 1024;
/// Per-connection window: shared by all requests on the link, so several slow readers
/// cannot starve the others.
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// Bound on concurrent requests per link (each is one HTTP/2 stream).
const MAX_STREAMS: u32 = 16_384;
/// Bound on header block size.
const MAX_HEADER_LIST: u32 = 64 * 1024;

/// Serves gRPC `service` on `stream` until the peer goes away or `shutdown` fires.
pub async fn serve_over<S, Svc, B>(
    stream: S,
    service: Svc,
    timing: &LinkTiming,
    shutdown: CancellationToken,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    Svc: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    Svc::Future: Send + 'static,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timing.keepalive_interval))
        .keep_alive_timeout(timing.keepalive_timeout)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buf_size(MAX_MESSAGE_BYTES.min(4 * 1024 * 1024));
    let svc = hyper_util::service::TowerToHyperService::new(service);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => res,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Makes a gRPC channel whose only connection is `stream` (already dialed or accepted).
/// When that connection dies the channel does not reconnect: calls fail with
/// `Unavailable`, and the link owner dials a fresh link.
pub async fn channel_over<S>(stream: S, timing: &LinkTiming) -> Result<Channel, NetError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let slot = Arc::new(Mutex::new(Some(stream)));
    let connector = tower::service_fn(move |_: Uri| {
        let taken = slot.lock().map(|mut s| s.take()).unwrap_or(None);
        async move {
            match taken {
                Some(s) => Ok(TokioIo::new(s)),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "link closed",
                )),
            }
        }
    });
    Endpoint::from_static("http://cocoon.link")
        .http2_keep_alive_interval(timing.keepalive_interval)
        .keep_alive_timeout(timing.keepalive_timeout)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect_with_connector(connector)
        .await
        .map_err(|e| NetError::Channel(e.to_string()))
}

/// Reads a finished answer stream up to its gRPC trailers (bounded by one second).
/// Dropping a response stream before its trailers arrive makes HTTP/2 reset it, and once a
/// connection has reset too many streams h2 closes the whole link with every request on it.
pub async fn drain_trailers<T>(stream: &mut tonic::Streaming<T>) {
    let drain = async { while let Ok(Some(_)) = stream.message().await {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
}
