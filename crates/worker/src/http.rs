//! The worker's plain-HTTP port: health, stats and metrics for its operator (no request
//! content), open to anyone who can reach it; and the operator actions under `/admin/`,
//! which demand the admin token (see `admin.rs`).

use crate::Shared;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use cocoon_net::metrics::{Encoder, Kind};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/jsonstats", get(jsonstats))
        .route(
            "/",
            get(|| async {
                cocoon_net::dashboard::page(cocoon_net::dashboard::DashboardRole::Worker)
            }),
        )
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes())
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
        "operator_disabled": shared.operator_disabled.load(Ordering::Relaxed),
        "admin_endpoints": shared.admin_digest.is_some(),
        "worker_fee_per_token": c.chain.registry().params.worker_fee_per_token,
        "active_requests": shared.active.load(Ordering::Relaxed),
        "max_active_requests": c.max_active_requests,
        "hardware": {
            "gpu_model": c.hardware.gpu_model, "gpu_count": c.hardware.gpu_count,
            "cpu_cores": c.hardware.cpu_cores, "memory_mib": c.hardware.memory_mib,
        },
        "payments": shared.wallet.stats_json(),
        "rates": shared.metrics.rates_json(),
        "metrics": shared.metrics.totals_json(),
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

/// Prometheus text: the request families every node has, then the worker's own.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut enc = Encoder::new();
    shared.metrics.render(&mut enc);
    let role = ("role", "worker");
    let flag = |b: bool| u64::from(b);
    enc.family(
        "cocoon_connected_peers",
        Kind::Gauge,
        "Links with completed handshakes, by peer kind.",
    )
    .int(
        &[role, ("peer", "proxy")],
        shared.stats.connected_proxies.load(Ordering::Relaxed),
    );
    enc.family(
        "cocoon_worker_enabled",
        Kind::Gauge,
        "1 while the worker offers itself to proxies.",
    )
    .int(&[role], flag(*shared.enabled.borrow()));
    enc.family(
        "cocoon_worker_engine_up",
        Kind::Gauge,
        "1 while the engine answers its health probe.",
    )
    .int(&[role], flag(shared.engine_ok.load(Ordering::Relaxed)));
    enc.family(
        "cocoon_worker_coefficient",
        Kind::Gauge,
        "Price coefficient (x1000).",
    )
    .int(&[role], u64::from(*shared.coefficient.borrow()));
    enc.family(
        "cocoon_worker_max_active_requests",
        Kind::Gauge,
        "Cap on concurrent requests.",
    )
    .int(&[role], u64::from(shared.config.max_active_requests));
    let fee = shared.config.chain.registry().params.worker_fee_per_token;
    let (voucher, paid) = shared.wallet.totals();
    enc.family(
        "cocoon_worker_voucher_nanoton",
        Kind::Gauge,
        "Highest payout vouchers held, over every proxy, times the worker fee (nanoTON).",
    )
    .int(&[role], voucher.saturating_mul(fee));
    enc.family(
        "cocoon_worker_paid_nanoton",
        Kind::Gauge,
        "Of that, paid out on chain as last read (nanoTON).",
    )
    .int(&[role], paid.saturating_mul(fee));
    enc.family(
        "cocoon_payment_events_total",
        Kind::Counter,
        "Payment events: payouts submitted, proxies refused for reports that went back.",
    )
    .int(
        &[role, ("kind", "payout")],
        shared.wallet.payouts.load(Ordering::Relaxed),
    )
    .int(
        &[role, ("kind", "refusal")],
        shared.wallet.refusals.load(Ordering::Relaxed),
    );
    cocoon_net::metrics::response(enc.finish())
}
