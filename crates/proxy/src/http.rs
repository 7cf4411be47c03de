//! The proxy's plain-HTTP port: health, stats and metrics for operators (no request
//! content).

use crate::Shared;
use axum::{extract::State, response::Response, routing::get, Json, Router};
use cocoon_net::metrics::{Encoder, Kind};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/jsonstats", get(jsonstats))
        .route(
            "/",
            get(|| async {
                cocoon_net::dashboard::page(cocoon_net::dashboard::DashboardRole::Proxy)
            }),
        )
        .route("/metrics", get(metrics))
        .with_state(shared);
    cocoon_net::serve_http(listener, app, shutdown, "proxy stats").await;
}

async fn jsonstats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let s = &shared.stats;
    Json(json!({
        "role": "proxy",
        "name": shared.config.name,
        "public_key": hex::encode(shared.identity.public_key()),
        "image_hash": shared.identity.image_hash().map(hex::encode),
        "stats": {
            "requests": s.requests.load(Ordering::Relaxed),
            "succeeded": s.succeeded.load(Ordering::Relaxed),
            "failed": s.failed.load(Ordering::Relaxed),
            "adjusted_tokens": s.adjusted_tokens.load(Ordering::Relaxed),
            "rejected_connections": s.rejected_connections.load(Ordering::Relaxed),
            "connected_clients": s.connected_clients.load(Ordering::Relaxed),
            "billed_nanoton": s.billed_nanoton.load(Ordering::Relaxed),
            "retries": s.retries.load(Ordering::Relaxed),
            "failovers": s.failovers.load(Ordering::Relaxed),
            "in_flight": shared.inflight.requests(crate::MAX_IN_FLIGHT),
        },
        "rates": shared.metrics.rates_json(),
        "metrics": shared.metrics.totals_json(),
        "workers": shared.workers.stats(),
        "routing_decisions": shared.workers.decisions(),
        "payments": shared.payments.as_ref().map(|p| p.stats_json()),
        "models": shared.workers.models().iter().map(|m| json!({
            "name": m.name, "workers": m.workers,
            "min_coefficient": m.min_coefficient, "max_coefficient": m.max_coefficient,
        })).collect::<Vec<_>>(),
    }))
}

/// Prometheus text: the request families every node has, then the proxy's own. Workers
/// and clients are counted, never named.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut enc = Encoder::new();
    shared.metrics.render(&mut enc);
    let role = ("role", "proxy");
    let s = &shared.stats;
    let workers = shared.workers.stats();
    enc.family(
        "cocoon_connected_peers",
        Kind::Gauge,
        "Links with completed handshakes, by peer kind.",
    )
    .int(&[role, ("peer", "worker")], workers.len() as u64)
    .int(
        &[role, ("peer", "client")],
        s.connected_clients.load(Ordering::Relaxed),
    );
    enc.family(
        "cocoon_proxy_enabled_workers",
        Kind::Gauge,
        "Connected workers currently enabled.",
    )
    .int(&[role], workers.iter().filter(|w| w.enabled).count() as u64);
    enc.family(
        "cocoon_rejected_connections_total",
        Kind::Counter,
        "Connections refused (limit, proof of work, handshake or attestation).",
    )
    .int(&[role], s.rejected_connections.load(Ordering::Relaxed));
    enc.family(
        "cocoon_proxy_retries_total",
        Kind::Counter,
        "Requests retried on another worker after a failure before the first byte.",
    )
    .int(&[role], s.retries.load(Ordering::Relaxed));
    enc.family(
        "cocoon_proxy_failovers_total",
        Kind::Counter,
        "Streamed answers continued on another worker after a failure mid-answer.",
    )
    .int(&[role], s.failovers.load(Ordering::Relaxed));
    enc.family(
        "cocoon_billed_nanoton_total",
        Kind::Counter,
        "nanoTON billed to clients for answered requests (payments on).",
    )
    .int(&[role], s.billed_nanoton.load(Ordering::Relaxed));
    if let Some(p) = &shared.payments {
        let m = &p.stats;
        enc.family(
            "cocoon_payment_events_total",
            Kind::Counter,
            "Payment events: DB batches, anchors, charges, payouts, refunds, errors, rollback alarms.",
        );
        for (kind, n) in [
            ("batch", &m.batches),
            ("anchor", &m.anchors),
            ("charge", &m.charges),
            ("payout", &m.payouts),
            ("refund", &m.refunds),
            ("chain_error", &m.chain_errors),
            ("db_error", &m.db_errors),
            ("alarm", &m.alarms),
        ] {
            enc.int(&[role, ("kind", kind)], n.load(Ordering::Relaxed));
        }
    }
    cocoon_net::metrics::response(enc.finish())
}
