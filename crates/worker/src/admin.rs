//! Operator actions on the worker's HTTP port (DESIGN §9): `POST /admin/enable`,
//! `/admin/disable`, `/admin/coefficient` and `/admin/payout`. Each demands
//! `Authorization: Bearer <admin_token>`; without an `admin_token` in the config they are
//! off (403). The read-only pages (`/healthz`, `/jsonstats`, `/metrics`) stay open.

use crate::{health, Shared};
use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The highest coefficient (×1000) proxies accept; higher ones get the worker refused.
pub(crate) const MAX_COEFFICIENT: u32 = 1_000_000;

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/enable", post(enable))
        .route("/admin/disable", post(disable))
        .route("/admin/coefficient", post(coefficient))
        .route("/admin/payout", post(payout))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The refusal to send, or None when the request carries the configured token. Digests
/// are compared in full (no early exit), so timing says nothing about the token.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &shared.admin_digest else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "admin endpoints are off: set admin_token",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| digest(t.trim()));
    let ok = given.is_some_and(|g| {
        g.iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    });
    if ok {
        None
    } else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (send Authorization: Bearer <admin_token>)",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Some(response)
    }
}

/// The enabled state as the operator sees it after a change.
fn state(shared: &Shared) -> Value {
    json!({
        "enabled": *shared.enabled.borrow(),
        "operator_disabled": shared.operator_disabled.load(Ordering::SeqCst),
        "engine_ok": shared.engine_ok.load(Ordering::SeqCst),
    })
}

/// Operator switch; the engine probe never overrides it (enabled = engine up && not
/// operator-disabled). A disabled worker finishes running requests but gets no new ones.
fn set_disabled(shared: &Shared, disabled: bool) -> Value {
    let before = shared.operator_disabled.swap(disabled, Ordering::SeqCst);
    if before != disabled {
        tracing::info!(
            "operator {} this worker",
            if disabled { "disabled" } else { "enabled" }
        );
    }
    health::recompute_enabled(shared, None);
    state(shared)
}

async fn enable(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    Json(set_disabled(&shared, false)).into_response()
}

async fn disable(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    Json(set_disabled(&shared, true)).into_response()
}

/// Checks an operator's coefficient (×1000): positive and at most [`MAX_COEFFICIENT`].
pub(crate) fn check_coefficient(c: u64) -> Result<u32, String> {
    match u32::try_from(c) {
        Ok(c) if (1..=MAX_COEFFICIENT).contains(&c) => Ok(c),
        _ => Err(format!(
            "coefficient must be between 1 and {MAX_COEFFICIENT} (×1000), got {c}"
        )),
    }
}

async fn coefficient(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}")),
    };
    let Some(c) = value.get("coefficient").and_then(Value::as_u64) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"coefficient\": N} with N a positive integer (×1000)",
        );
    };
    let c = match check_coefficient(c) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let before = shared.coefficient.send_replace(c);
    if before != c {
        tracing::info!(from = before, to = c, "operator changed the coefficient");
    }
    Json(json!({ "coefficient": c, "previous": before })).into_response()
}

async fn payout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&shared, &headers) {
        return r;
    }
    let wallet = shared.wallet.clone();
    let chain = shared.config.chain.clone();
    match tokio::task::spawn_blocking(move || wallet.payout_now(chain.as_ref())).await {
        Ok(Ok(proxies)) => {
            let submitted = proxies
                .iter()
                .filter(|p| p["result"] == "submitted")
                .count();
            Json(json!({ "submitted": submitted, "proxies": proxies })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, &e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficient_bounds() {
        assert_eq!(check_coefficient(1), Ok(1));
        assert_eq!(check_coefficient(1_000_000), Ok(1_000_000));
        assert!(check_coefficient(0).is_err());
        assert!(check_coefficient(1_000_001).is_err());
        assert!(check_coefficient(u64::from(u32::MAX) + 1).is_err());
    }
}
