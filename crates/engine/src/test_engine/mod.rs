//! Deterministic OpenAI-compatible HTTP server for integration tests and benchmarks.
//!
//! Output is a pure function of the request body (and the config), so tests can compare bytes
//! end to end; stats show whether requests reached the engine and whether a client's
//! disconnect travelled all the way here.

mod gen;
mod wire;

// TCP_NODELAY on accepted sockets: otherwise a small response can wait ~40 ms for the
// peer's delayed ACK (Nagle's algorithm).
use axum::serve::ListenerExt;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

use gen::{Kind, PlanError};

/// Request bodies above this are rejected by axum; generous so benchmarks can send long prompts.
const MAX_REQUEST_BYTES: usize = 64 << 20;

#[derive(Clone, Debug)]
pub struct TestEngineConfig {
    /// Served model ids; requests naming another model get 404.
    pub models: Vec<String>,
    /// Output chunks per request (before `max_tokens` capping); one chunk counts as one token.
    pub chunks: u32,
    /// Bytes of content text per chunk.
    pub chunk_size: usize,
    /// Sleep before each content chunk (streaming) or `chunks × delay` total (non-streaming).
    pub chunk_delay: Duration,
}

impl Default for TestEngineConfig {
    fn default() -> Self {
        Self {
            models: vec!["test-model".to_owned()],
            chunks: 8,
            chunk_size: 16,
            chunk_delay: Duration::ZERO,
        }
    }
}

/// Snapshot of the engine's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestEngineStats {
    /// Completion requests that passed validation and started generating.
    pub requests_started: u64,
    /// Of those, the ones whose whole response was produced.
    pub requests_completed: u64,
    /// Of those, the ones whose client went away before the end (stream or non-stream).
    pub streams_cancelled: u64,
}

#[derive(Debug, Default)]
struct Shared {
    started: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    failing: AtomicBool,
}

/// The test engine; clones share stats and the failing switch.
#[derive(Clone, Debug)]
pub struct TestEngine {
    config: Arc<TestEngineConfig>,
    shared: Arc<Shared>,
}

impl TestEngine {
    pub fn new(config: TestEngineConfig) -> Self {
        Self {
            config: Arc::new(config),
            shared: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/health", get(health))
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(self.clone())
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(
            listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            self.router(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    }

    pub fn stats(&self) -> TestEngineStats {
        TestEngineStats {
            requests_started: self.shared.started.load(Ordering::SeqCst),
            requests_completed: self.shared.completed.load(Ordering::SeqCst),
            streams_cancelled: self.shared.cancelled.load(Ordering::SeqCst),
        }
    }

    /// While failing, `/v1/models` and `/health` answer 503 and completions 500.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    fn failing(&self) -> bool {
        self.shared.failing.load(Ordering::SeqCst)
    }
}

/// Counts a request as started; on drop before [`RequestGuard::finish`] (the handler future or
/// response stream was dropped because the client left) counts it as cancelled.
struct RequestGuard {
    shared: Arc<Shared>,
    done: bool,
}

impl RequestGuard {
    fn start(shared: &Arc<Shared>) -> Self {
        shared.started.fetch_add(1, Ordering::SeqCst);
        Self {
            shared: shared.clone(),
            done: false,
        }
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.completed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if !self.done {
            self.shared.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: String) -> Response {
    let body = serde_json::json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    });
    (status, axum::Json(body)).into_response()
}

fn unavailable(status: StatusCode) -> Response {
    let msg = "test engine is set to fail".to_owned();
    error(status, "server_error", Some("engine_failing"), msg)
}

async fn health(State(engine): State<TestEngine>) -> Response {
    if engine.failing() {
        return unavailable(StatusCode::SERVICE_UNAVAILABLE);
    }
    (StatusCode::OK, "ok").into_response()
}

async fn models(State(engine): State<TestEngine>) -> Response {
    if engine.failing() {
        return unavailable(StatusCode::SERVICE_UNAVAILABLE);
    }
    let data: Vec<_> = engine
        .config
        .models
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "cocoon-test"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

async fn chat(State(engine): State<TestEngine>, body: Bytes) -> Response {
    generate(engine, Kind::Chat, body).await
}

async fn completions(State(engine): State<TestEngine>, body: Bytes) -> Response {
    generate(engine, Kind::Completion, body).await
}

async fn generate(engine: TestEngine, kind: Kind, body: Bytes) -> Response {
    if engine.failing() {
        return unavailable(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let plan = match gen::plan(kind, &body, &engine.config) {
        Ok(plan) => plan,
        Err(e) => return plan_error(e),
    };
    let mut guard = RequestGuard::start(&engine.shared);
    let delay = engine.config.chunk_delay;

    if !plan.stream {
        let n = u32::try_from(plan.texts.len()).unwrap_or(u32::MAX);
        if !delay.is_zero() {
            // If the client leaves during this sleep, the handler future is dropped with the guard.
            tokio::time::sleep(delay.saturating_mul(n)).await;
        }
        let json = wire::full_response(kind, &plan);
        guard.finish();
        return ([(header::CONTENT_TYPE, "application/json")], json).into_response();
    }

    let events = wire::stream_events(kind, &plan).into_iter();
    // hyper drops the body stream when the client disconnects, dropping the guard with it.
    let stream =
        futures::stream::unfold((events, guard), move |(mut events, mut guard)| async move {
            let event = events.next()?;
            if event.delay_before && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if events.len() == 0 {
                guard.finish();
            }
            Some((Ok::<_, Infallible>(event.bytes), (events, guard)))
        });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn plan_error(e: PlanError) -> Response {
    let invalid = "invalid_request_error";
    match e {
        PlanError::BadJson(msg) => error(
            StatusCode::BAD_REQUEST,
            invalid,
            Some("invalid_json"),
            format!("invalid request body: {msg}"),
        ),
        PlanError::Missing(field) => error(
            StatusCode::BAD_REQUEST,
            invalid,
            Some("missing_required_parameter"),
            format!("missing required parameter: {field}"),
        ),
        PlanError::UnknownModel(model) => error(
            StatusCode::NOT_FOUND,
            invalid,
            Some("model_not_found"),
            format!("the model `{model}` does not exist"),
        ),
    }
}
