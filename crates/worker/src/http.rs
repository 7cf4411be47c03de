//! The worker's plain-HTTP port: health and stats for its operator (no request content).

use crate::Shared;
use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/jsonstats", get(jsonstats))
        .with_state(shared);
    cocoon_net::serve_http(listener, app, shutdown, "worker stats").await;
}

/// 200 while the worker offers itself to proxies; 503 (with the reason) otherwise.
async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let engine_ok = shared.engine_ok.load(Ordering::Relaxed);
    let enabled = *shared.enabled.borrow();
    let status = if enabled {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let reason = match (engine_ok, enabled) {
        (_, true) => "ok",
        (false, _) => "engine_down",
        (true, false) => "disabled_by_operator",
    };
    (status, Json(json!({"status": reason})))
}

async fn jsonstats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let s = &shared.stats;
    let c = &shared.config;
    Json(json!({
        "role": "worker",
        "name": c.name,
        "model_id": c.model_id,
        "coefficient": *shared.coefficient.borrow(),
        "engine_ok": shared.engine_ok.load(Ordering::Relaxed),
        "enabled": *shared.enabled.borrow(),
        "active_requests": shared.active.load(Ordering::Relaxed),
        "max_active_requests": c.max_active_requests,
        "hardware": {
            "gpu_model": c.hardware.gpu_model, "gpu_count": c.hardware.gpu_count,
            "cpu_cores": c.hardware.cpu_cores, "memory_mib": c.hardware.memory_mib,
        },
        "payments": shared.wallet.stats_json(),
        "stats": {
            "requests": s.requests.load(Ordering::Relaxed),
            "succeeded": s.succeeded.load(Ordering::Relaxed),
            "failed": s.failed.load(Ordering::Relaxed),
            "prompt_tokens": s.prompt_tokens.load(Ordering::Relaxed),
            "completion_tokens": s.completion_tokens.load(Ordering::Relaxed),
            "connected_proxies": s.connected_proxies.load(Ordering::Relaxed),
        },
    }))
}
