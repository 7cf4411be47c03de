//! The chain over HTTP/JSON, served by `cocoon chain serve` and read by [`RemoteChain`].
//!
//! | route                  | answer                                              |
//! |------------------------|-----------------------------------------------------|
//! | `GET /registry`        | the registry                                        |
//! | `GET /state`           | the whole world (wallets, contracts)                |
//! | `GET /balance/{addr}`  | `{"address", "balance"}`                            |
//! | `GET /time`            | the [`Tip`](crate::Tip) (seq, block, now)           |
//! | `GET /history?from=N&limit=M` | applied ops with seq ≥ N (limit ≤ 1000)      |
//! | `POST /submit`         | an `Op` → its `TxRecord`; 409 when the ledger refuses, 400 when malformed |
//! | `POST /advance`        | `{"secs": n}` → the new tip (devnet time travel)    |
//!
//! Errors are `{"error": "..."}`. The chain's sync calls (SQLite with fsync) run on the
//! blocking pool so they never stall the server's reactor.
//!
//! [`RemoteChain`]: crate::RemoteChain

use crate::{Chain, ChainError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
// TCP_NODELAY on accepted sockets: otherwise a small response can wait ~40 ms for the
// peer's delayed ACK (Nagle's algorithm).
use axum::serve::ListenerExt;
use axum::{Json, Router};
use cocoon_ledger::{Address, Op};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;

/// Largest request body: an op with a voucher is well under 1 KiB.
pub const MAX_BODY: usize = 64 * 1024;
/// Most history records one request returns.
pub const MAX_HISTORY: usize = 1000;

#[derive(Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Serialize, Deserialize)]
pub struct BalanceBody {
    pub address: Address,
    pub balance: u64,
}

#[derive(Serialize, Deserialize)]
pub struct AdvanceBody {
    pub secs: u64,
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default)]
    from: u64,
    limit: Option<usize>,
}

type Shared = State<Arc<dyn Chain>>;

/// The chain's HTTP routes.
pub fn router(chain: Arc<dyn Chain>) -> Router {
    Router::new()
        .route("/registry", get(registry))
        .route("/state", get(state))
        .route("/balance/{address}", get(balance))
        .route("/time", get(time))
        .route("/history", get(history))
        .route("/submit", post(submit))
        .route("/advance", post(advance))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(chain)
}

/// Serves `chain` on `listener` until `shutdown` completes.
pub async fn serve(
    chain: Arc<dyn Chain>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        router(chain),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn registry(State(chain): Shared) -> Response {
    let registry = chain.registry();
    Json(&*registry).into_response()
}

async fn state(State(chain): Shared) -> Response {
    blocking(move || chain.world().map(|w| Json(&*w).into_response())).await
}

async fn balance(State(chain): Shared, Path(address): Path<String>) -> Response {
    let address = match Address::from_hex(&address) {
        Ok(a) => a,
        Err(e) => return error(ChainError::BadRequest(format!("address: {e}"))),
    };
    blocking(move || {
        let balance = chain.balance(&address)?;
        Ok(Json(BalanceBody { address, balance }).into_response())
    })
    .await
}

async fn time(State(chain): Shared) -> Response {
    blocking(move || chain.tip().map(|t| Json(t).into_response())).await
}

async fn history(State(chain): Shared, Query(q): Query<HistoryQuery>) -> Response {
    let limit = q.limit.unwrap_or(MAX_HISTORY).min(MAX_HISTORY);
    blocking(move || {
        chain
            .history(q.from, limit)
            .map(|h| Json(h).into_response())
    })
    .await
}

async fn submit(State(chain): Shared, body: Bytes) -> Response {
    let op: Op = match serde_json::from_slice(&body) {
        Ok(op) => op,
        Err(e) => return error(ChainError::BadRequest(format!("op: {e}"))),
    };
    blocking(move || chain.submit(op).map(|r| Json(r).into_response())).await
}

async fn advance(State(chain): Shared, body: Bytes) -> Response {
    let req: AdvanceBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(ChainError::BadRequest(format!("advance: {e}"))),
    };
    blocking(move || chain.advance(req.secs).map(|t| Json(t).into_response())).await
}

async fn blocking(f: impl FnOnce() -> Result<Response, ChainError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => error(e),
        Err(e) => error(ChainError::Db {
            path: String::new(),
            message: format!("chain call failed: {e}"),
        }),
    }
}

fn error(e: ChainError) -> Response {
    let status = match &e {
        ChainError::Rejected { .. } => StatusCode::CONFLICT,
        ChainError::BadRequest(_) | ChainError::NotOwnWallet(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        Json(ErrorBody {
            error: e.to_string(),
        }),
    )
        .into_response()
}
