//! Plain-HTTP servers of the nodes (the app API, health and stats pages).

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `shutdown`, logging (not returning) a server failure.
/// Sockets get TCP_NODELAY: without it a small response, such as one SSE event, can wait
/// ~40 ms for the peer's delayed ACK (Nagle's algorithm).
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    what: &str,
) {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!("{what} HTTP server stopped: {e}");
    }
}
