//! The app-facing OpenAI-compatible HTTP API, plus `/healthz`, `/jsonstats` and `/metrics`.

use crate::errors::ApiError;
use crate::keys::KeyState;
use crate::links::ProxyLink;
use cocoon_net::inflight::Admitted;

/// Proxies one request may be tried on when they are down before accepting it.
const MAX_PROXY_TRIES: usize = 3;
use crate::request::{parse, ParsedRequest};
use crate::usage_cost::{inject_json, usage_event, SseCostRelay};
use crate::Shared;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cocoon_net::metrics::{self, Encoder, Kind, ModelId};
use cocoon_proto::{
    answer::Part, Answer, AnswerError, ClientRunRequest, ModelsRequest, MAX_BODY_BYTES,
};
use futures::StreamExt;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;
use tonic::Streaming;

/// Largest non-streaming answer the client buffers for an app.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat).options(preflight))
        .route("/v1/completions", post(completions).options(preflight))
        .route("/v1/models", get(models).options(preflight))
        .route("/healthz", get(healthz))
        .route("/jsonstats", get(jsonstats))
        .route(
            "/",
            get(|| async {
                cocoon_net::dashboard::page(cocoon_net::dashboard::DashboardRole::Client)
            }),
        )
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .layer(axum::middleware::map_response(cors))
        .with_state(shared)
}

async fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, X-Request-Id"),
    );
    response
}

/// Browsers send a CORS preflight before a cross-origin POST; the `cors` layer adds the headers.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn fallback(method: Method) -> Response {
    if method == Method::OPTIONS {
        return StatusCode::NO_CONTENT.into_response();
    }
    ApiError::not_found("no such endpoint; see /v1/chat/completions, /v1/completions, /v1/models")
        .into_response()
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let proxies = shared.links.count();
    let status = if proxies > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if proxies > 0 { "ok" } else { "no_proxy" }, "proxies": proxies})),
    )
        .into_response()
}

async fn jsonstats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let s = &shared.stats;
    let payments = shared.books.views();
    Json(json!({
        "role": "client",
        "name": shared.config.name,
        "proxies": shared.links.endpoints(),
        "proxy_links": shared.links.health(),
        "stats": {
            "requests": s.requests.load(Ordering::Relaxed),
            "succeeded": s.succeeded.load(Ordering::Relaxed),
            "failed": s.failed.load(Ordering::Relaxed),
            "total_cost": s.total_cost.load(Ordering::Relaxed),
            "in_flight": shared.inflight.requests(crate::MAX_IN_FLIGHT),
            "proxy_refusals": s.proxy_refusals.load(Ordering::Relaxed),
            "top_ups": payments.iter().map(|p| p.top_ups).sum::<u64>(),
            "self_charges": payments.iter().map(|p| p.self_charges).sum::<u64>(),
        },
        "payments": payments,
        "api_keys": shared.keys.stats(),
        "rates": shared.metrics.rates_json(),
        "metrics": shared.metrics.totals_json(),
    }))
}

/// Prometheus text: the request families every node has, then the client's own. No
/// label carries request content, an app's address or a model name the network has not
/// served.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let mut enc = Encoder::new();
    shared.metrics.render(&mut enc);
    let role = ("role", "client");
    enc.family(
        "cocoon_connected_peers",
        Kind::Gauge,
        "Links with completed handshakes, by peer kind.",
    )
    .int(&[role, ("peer", "proxy")], shared.links.count() as u64);
    let payments = shared.books.views();
    enc.family(
        "cocoon_payment_events_total",
        Kind::Counter,
        "Payment events: top-ups, charge vouchers submitted by the client, proxies refused.",
    )
    .int(
        &[role, ("kind", "top_up")],
        payments.iter().map(|p| p.top_ups).sum(),
    )
    .int(
        &[role, ("kind", "self_charge")],
        payments.iter().map(|p| p.self_charges).sum(),
    )
    .int(
        &[role, ("kind", "refusal")],
        shared.stats.proxy_refusals.load(Ordering::Relaxed),
    );
    cocoon_net::metrics::response(enc.finish())
}

async fn models(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    shared.keys.admit(&headers, std::time::Instant::now())?;
    let link = shared.links.pick(&[]).ok_or_else(ApiError::no_proxy)?;
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        link.client.clone().models(ModelsRequest {}),
    )
    .await
    .map_err(|_| {
        ApiError::from_network(
            cocoon_proto::ErrorCode::Deadline as i32,
            "proxy did not list models in time".into(),
        )
    })?
    .map_err(|s| {
        ApiError::from_network(
            cocoon_proto::ErrorCode::Upstream as i32,
            s.message().to_string(),
        )
    })?
    .into_inner();
    for m in &reply.models {
        // Names the network serves become `model` label values (bounded, validated).
        metrics::intern(&m.name);
    }
    let data: Vec<_> = reply
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m.name, "object": "model", "created": 0, "owned_by": "cocoon",
                "workers": m.workers, "min_coefficient": m.min_coefficient, "max_coefficient": m.max_coefficient,
                "running_requests": m.running_requests, "max_running_requests": m.max_running_requests,
                "model_ids": m.model_ids,
                "hardware": m.hardware.iter().map(|h| json!({
                    "gpu_model": h.gpu_model, "gpu_count": h.gpu_count, "vram_mib": h.vram_mib,
                    "gpu_driver": h.driver, "cc_mode": h.cc_mode,
                    "cpu_cores": h.cpu_cores, "memory_mib": h.memory_mib,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn chat(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    inference(shared, "/v1/chat/completions", request).await
}

async fn completions(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    inference(shared, "/v1/completions", request).await
}

/// The app's `X-Request-Id` when it is a sane token (≤ 128 visible ASCII bytes), else a
/// fresh one; echoed on every answer so apps and operators can correlate.
fn request_id(headers: &axum::http::HeaderMap) -> HeaderValue {
    headers
        .get("x-request-id")
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&hex::encode(rand::random::<[u8; 16]>()))
                .unwrap_or(HeaderValue::from_static("unknown"))
        })
}

async fn inference(shared: Arc<Shared>, path: &'static str, request: Request) -> Response {
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let id = request_id(request.headers());
    // Finished by `run` on success (or handed to the stream); here on failure.
    let mut metered = Some(shared.metrics.start(ModelId::OTHER, false));
    // The body's share of the in-flight budget, before it is read (a body longer than it
    // said is cut off by the read limit below).
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .map_or(MAX_BODY_BYTES, |n| n.min(MAX_BODY_BYTES));
    let result = match shared
        .keys
        .admit(request.headers(), std::time::Instant::now())
        .and_then(|key| {
            let admitted = shared
                .inflight
                .admit(declared)
                .map_err(|busy| ApiError::rate_limited(busy.to_string(), 1))?;
            Ok((key, admitted))
        }) {
        Ok((key, admitted)) => run(&shared, path, request, &mut metered, key, declared)
            .await
            .map(|response| hold_until_sent(response, admitted)),
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = metered.take() {
            m.fail(e.error_code as i32);
        }
    }
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert("x-request-id", id);
    response
}

/// Keeps a request's in-flight admission until its answer has gone to the app (or the app
/// went away and the body was dropped).
fn hold_until_sent(response: Response, admitted: Admitted) -> Response {
    response.map(|body| {
        let stream = body.into_data_stream().map(move |chunk| {
            let _held = &admitted;
            chunk
        });
        Body::from_stream(stream)
    })
}

async fn run(
    shared: &Arc<Shared>,
    path: &'static str,
    request: Request,
    metered: &mut Option<metrics::Request>,
    key: Option<Arc<KeyState>>,
    declared: usize,
) -> Result<Response, ApiError> {
    let raw = axum::body::to_bytes(request.into_body(), declared)
        .await
        .map_err(|_| {
            ApiError::bad_request(format!(
                "request body is larger than the {MAX_BODY_BYTES}-byte limit (or its Content-Length) or could not be read"
            ))
        })?;
    let parsed = parse(&raw, &shared.config.defaults).map_err(ApiError::bad_request)?;
    if let Some(m) = metered.as_mut() {
        // The app's text is only looked up: unknown names are "other".
        m.set_model(metrics::lookup(&parsed.model));
        m.set_stream(parsed.stream);
    }
    let deadline = Instant::now() + parsed.timeout;
    let ParsedRequest {
        model,
        stream,
        max_tokens,
        max_coefficient,
        timeout,
        body,
    } = parsed;
    let served_model = model.clone();
    let request = ClientRunRequest {
        request_id: rand::random::<[u8; 16]>().to_vec().into(),
        path: path.to_string(),
        model,
        body: body.into(),
        max_tokens,
        max_coefficient,
        timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
        stream,
    };
    // Proxy failover (issue 6): a proxy that is down before it accepted the request (the
    // call never got an answer stream) costs nothing to retry on another one.
    let mut tried: Vec<Arc<ProxyLink>> = Vec::new();
    let mut answers = loop {
        let Some(link) = shared.links.pick(&tried) else {
            return Err(match tried.is_empty() {
                true => ApiError::no_proxy(),
                false => ApiError::from_network(
                    cocoon_proto::ErrorCode::Upstream as i32,
                    format!("every proxy link failed ({} tried)", tried.len()),
                ),
            });
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let mut call = tonic::Request::new(request.clone());
        call.set_timeout(remaining);
        let started = Instant::now();
        match tokio::time::timeout_at(deadline, link.client.clone().run(call)).await {
            Err(_) => return Err(deadline_error()),
            Ok(Ok(r)) => {
                link.observe_latency(started.elapsed());
                link.failures.store(0, Ordering::Relaxed);
                break r.into_inner();
            }
            // Unavailable: no connection; Cancelled: the connection went away under the call.
            // Either way no answer stream began, so nothing was billed for this attempt.
            Ok(Err(s))
                if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Cancelled)
                    && tried.len() < MAX_PROXY_TRIES =>
            {
                link.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(proxy = %link.endpoint, "proxy link down; trying another proxy");
                tried.push(link);
            }
            Ok(Err(s)) => {
                link.failures.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::from_network(
                    cocoon_proto::ErrorCode::Upstream as i32,
                    format!("proxy link failed: {}", s.message()),
                ));
            }
        }
    };
    let head = match next(&mut answers, deadline).await? {
        Part::Head(h) => h,
        Part::Error(e) => return Err(ApiError::from_network(e.code, e.message)),
        _ => {
            return Err(ApiError::from_network(
                cocoon_proto::ErrorCode::Protocol as i32,
                "answer did not start with a head".into(),
            ))
        }
    };
    let status = StatusCode::from_u16(u16::try_from(head.status).unwrap_or(502))
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = HeaderValue::from_str(&head.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    if stream {
        let body = Body::from_stream(relay_stream(
            shared.clone(),
            answers,
            deadline,
            metered.take(),
            served_model,
            key,
            path == "/v1/chat/completions",
        ));
        return Ok(Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()));
    }
    let mut collected = Vec::new();
    loop {
        match next(&mut answers, deadline).await? {
            Part::Chunk(c) => {
                if collected.len() + c.data.len() > MAX_ANSWER_BYTES {
                    return Err(ApiError::from_network(
                        cocoon_proto::ErrorCode::Upstream as i32,
                        "answer too large".into(),
                    ));
                }
                collected.extend_from_slice(&c.data);
            }
            Part::End(end) => {
                if let Some(with_cost) = end.cost.and_then(|c| inject_json(&collected, &c)) {
                    collected = with_cost;
                }
                shared.record_success(&served_model, end.cost.map_or(0, |c| c.total_cost));
                if let Some(k) = &key {
                    k.spend(end.cost.map_or(0, |c| c.total_cost));
                }
                if let Some(mut m) = metered.take() {
                    // A worker served it: the name is one the network has.
                    m.set_model(metrics::intern(&served_model));
                    m.succeed(end.usage.as_ref());
                }
                break;
            }
            Part::Error(e) => return Err(ApiError::from_network(e.code, e.message)),
            Part::Head(_) => {
                return Err(ApiError::from_network(
                    cocoon_proto::ErrorCode::Protocol as i32,
                    "second answer head".into(),
                ))
            }
        }
    }
    Ok(Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(collected))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

fn deadline_error() -> ApiError {
    ApiError::from_network(
        cocoon_proto::ErrorCode::Deadline as i32,
        "request deadline passed".into(),
    )
}

/// The next answer part, or the error the app should see. After the last part the stream
/// is read to its trailers, so the link never accumulates reset streams.
async fn next(answers: &mut Streaming<Answer>, deadline: Instant) -> Result<Part, ApiError> {
    match tokio::time::timeout_at(deadline, answers.message()).await {
        Err(_) => Err(deadline_error()),
        Ok(Err(s)) => Err(ApiError::from_network(
            cocoon_proto::ErrorCode::Upstream as i32,
            format!("proxy link failed: {}", s.message()),
        )),
        Ok(Ok(None)) => Err(ApiError::from_network(
            cocoon_proto::ErrorCode::Protocol as i32,
            "answer ended early".into(),
        )),
        Ok(Ok(Some(Answer { part: None }))) => Err(ApiError::from_network(
            cocoon_proto::ErrorCode::Protocol as i32,
            "empty answer part".into(),
        )),
        Ok(Ok(Some(Answer { part: Some(p) }))) => {
            if matches!(p, Part::End(_) | Part::Error(_)) {
                cocoon_net::drain_trailers(answers).await;
            }
            Ok(p)
        }
    }
}

/// SSE body for the app: engine chunks as they come; a failure after the stream began
/// becomes an error event (OpenAI style) and ends the stream at once. The usage event (and
/// what follows it) waits for the end of the answer, which brings its cost.
fn relay_stream(
    shared: Arc<Shared>,
    mut answers: Streaming<Answer>,
    deadline: Instant,
    mut metered: Option<metrics::Request>,
    model: String,
    key: Option<Arc<KeyState>>,
    chat: bool,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    async_stream::stream! {
        let mut relay = SseCostRelay::new();
        let failure = loop {
            match next(&mut answers, deadline).await {
                Ok(Part::Chunk(c)) => {
                    if let Some(m) = metered.as_mut() {
                        m.first_token();
                    }
                    let now = relay.push(c.data);
                    if !now.is_empty() {
                        yield Ok(now);
                    }
                }
                Ok(Part::End(end)) => {
                    // Usage the worker counted itself (its engine sent none) still reaches
                    // the app, as the final usage event OpenAI clients expect.
                    let counted = (!end.usage_from_engine)
                        .then_some(end.usage.as_ref())
                        .flatten()
                        .map(|u| usage_event(chat, &model, u, end.cost.as_ref()));
                    let rest = relay.finish_with(end.cost.as_ref(), counted);
                    if !rest.is_empty() {
                        yield Ok(rest);
                    }
                    shared.record_success(&model, end.cost.map_or(0, |c| c.total_cost));
                    if let Some(k) = &key {
                        k.spend(end.cost.map_or(0, |c| c.total_cost));
                    }
                    if let Some(mut m) = metered.take() {
                        m.set_model(metrics::intern(&model));
                        m.succeed(end.usage.as_ref());
                    }
                    return;
                }
                Ok(Part::Error(AnswerError { code, message, .. })) => {
                    break ApiError::from_network(code, message);
                }
                Ok(Part::Head(_)) => {
                    break ApiError::from_network(cocoon_proto::ErrorCode::Protocol as i32, "second answer head".into());
                }
                Err(e) => break e,
            }
        };
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = metered.take() {
            m.fail(failure.error_code as i32);
        }
        let held = relay.abort();
        if !held.is_empty() {
            yield Ok(held);
        }
        yield Ok(error_event(&failure));
    }
}

fn error_event(e: &ApiError) -> Bytes {
    Bytes::from(format!("data: {}\n\n", e.body()))
}
