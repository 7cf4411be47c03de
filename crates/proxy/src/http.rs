//! The proxy's plain-HTTP port: health and stats for operators (no request content).

use crate::Shared;
use axum::{extract::State, routing::get, Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/jsonstats", get(jsonstats))
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
        },
        "workers": shared.workers.stats(),
        "payments": shared.payments.as_ref().map(|p| p.stats_json()),
        "models": shared.workers.models().iter().map(|m| json!({
            "name": m.name, "workers": m.workers,
            "min_coefficient": m.min_coefficient, "max_coefficient": m.max_coefficient,
        })).collect::<Vec<_>>(),
    }))
}
