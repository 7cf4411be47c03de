//! The gRPC service a worker serves on each proxy link: the control session and requests.

use crate::{body, control, Shared};
use cocoon_engine::UsageScanner;
use cocoon_net::metrics;
use cocoon_proto::{
    answer::Part, Answer, AnswerChunk, AnswerEnd, AnswerError, AnswerHead, ErrorCode,
    ProxyToWorker, Usage, WorkerRunRequest, WorkerToProxy, MAX_CHUNK_BYTES,
};
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

pub(crate) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub(crate) struct LinkService {
    shared: Arc<Shared>,
    /// Cancelled to drop this link (e.g. the proxy refused us).
    link_closed: CancellationToken,
    control_started: AtomicBool,
}

impl LinkService {
    pub fn new(shared: Arc<Shared>, link_closed: CancellationToken) -> Self {
        LinkService {
            shared,
            link_closed,
            control_started: AtomicBool::new(false),
        }
    }
}

#[tonic::async_trait]
impl cocoon_proto::worker_link_server::WorkerLink for LinkService {
    type ControlStream = BoxStream<WorkerToProxy>;
    type RunStream = BoxStream<Answer>;

    async fn control(
        &self,
        request: Request<Streaming<ProxyToWorker>>,
    ) -> Result<Response<Self::ControlStream>, Status> {
        if self.control_started.swap(true, Ordering::SeqCst) {
            return Err(Status::already_exists(
                "control session already open on this link",
            ));
        }
        let stream = control::session(
            self.shared.clone(),
            request.into_inner(),
            self.link_closed.clone(),
        );
        Ok(Response::new(stream))
    }

    async fn run(
        &self,
        request: Request<WorkerRunRequest>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let req = request.into_inner();
        let shared = self.shared.clone();
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let metered = shared.metrics.start(shared.model_label, req.stream);
        shared.wallet.used();
        if !*shared.enabled.borrow() {
            return Ok(single_error(
                &shared,
                metered,
                ErrorCode::NoCapacity,
                "worker is disabled",
            ));
        }
        let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
            return Ok(single_error(
                &shared,
                metered,
                ErrorCode::Overloaded,
                "worker is at its active-request cap",
            ));
        };
        let body = match body::rewrite(
            &req.path,
            &req.body,
            &shared.base_model,
            req.max_tokens,
            req.stream,
        ) {
            Ok(b) => b,
            Err(msg) => return Ok(single_error(&shared, metered, ErrorCode::BadRequest, &msg)),
        };
        let deadline = Instant::now() + Duration::from_millis(u64::from(req.timeout_ms.max(1)));
        Ok(Response::new(Box::pin(relay(
            shared, req, body, deadline, permit, metered,
        ))))
    }
}

fn error_answer(code: ErrorCode, message: &str, stream_started: bool) -> Answer {
    Answer {
        part: Some(Part::Error(AnswerError {
            code: code as i32,
            message: message.to_string(),
            usage: None,
            stream_started,
        })),
    }
}

fn single_error(
    shared: &Shared,
    metered: metrics::Request,
    code: ErrorCode,
    message: &str,
) -> Response<BoxStream<Answer>> {
    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
    metered.fail(code as i32);
    let answer = error_answer(code, message, false);
    Response::new(Box::pin(futures::stream::once(async move { Ok(answer) })))
}

/// Calls the engine and relays its answer chunk by chunk. The stream is polled by the
/// HTTP/2 sender only when the proxy has window for it, so a slow app slows only this
/// request; dropping the stream (proxy cancelled) drops the engine call.
fn relay(
    shared: Arc<Shared>,
    req: WorkerRunRequest,
    body: Vec<u8>,
    deadline: Instant,
    permit: tokio::sync::OwnedSemaphorePermit,
    metered: metrics::Request,
) -> impl Stream<Item = Result<Answer, Status>> + Send + 'static {
    async_stream::stream! {
        let _permit = permit;
        let mut metered = metered;
        shared.active.fetch_add(1, Ordering::Relaxed);
        let _active = scopeguard(shared.clone());
        let called = tokio::time::timeout_at(deadline, shared.engine.call(&req.path, body.into())).await;
        let response = match called {
            Err(_) => {
                shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                metered.fail(ErrorCode::Deadline as i32);
                yield Ok(error_answer(ErrorCode::Deadline, "deadline passed before the engine answered", false));
                return;
            }
            Ok(Err(e)) => {
                shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                metered.fail(ErrorCode::Upstream as i32);
                yield Ok(error_answer(ErrorCode::Upstream, &format!("engine call failed: {e}"), false));
                return;
            }
            Ok(Ok(r)) => r,
        };
        if response.status >= 500 {
            // A server-side engine failure is this worker's problem, not the request's:
            // report it as an error before any byte so the proxy retries elsewhere.
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            metered.fail(ErrorCode::Upstream as i32);
            let message = format!("engine answered HTTP {}", response.status);
            yield Ok(error_answer(ErrorCode::Upstream, &message, false));
            return;
        }
        yield Ok(Answer { part: Some(Part::Head(AnswerHead {
            status: u32::from(response.status),
            content_type: response.content_type.clone().unwrap_or_else(|| "application/json".into()),
        }))});
        // With a tokenizer for the model, collect the answer text too: an engine that reports
        // no usage (llama.cpp-based servers when streaming) is then billed by our own count.
        let counter = shared.config.token_counter.clone();
        let mut scanner = if counter.is_some() {
            UsageScanner::with_text(req.stream)
        } else {
            UsageScanner::new(req.stream)
        };
        let mut engine_body = response.body;
        loop {
            let next = tokio::time::timeout_at(deadline, engine_body.next()).await;
            match next {
                Err(_) => {
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    metered.fail(ErrorCode::Deadline as i32);
                    yield Ok(error_answer(ErrorCode::Deadline, "deadline passed while the engine was answering", true));
                    return;
                }
                Ok(None) => break,
                // Some servers (llama-cpp-python's) end the connection uncleanly after the
                // final `[DONE]`: the answer is complete, so that is the end, not a failure.
                Ok(Some(Err(e))) if scanner.saw_done() => {
                    tracing::debug!("engine connection ended uncleanly after [DONE]: {e}");
                    break;
                }
                Ok(Some(Err(e))) => {
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    metered.fail(ErrorCode::Upstream as i32);
                    yield Ok(error_answer(ErrorCode::Upstream, &format!("engine stream failed: {e}"), true));
                    return;
                }
                Ok(Some(Ok(mut data))) => {
                    metered.first_token();
                    scanner.feed(&data);
                    while data.len() > MAX_CHUNK_BYTES {
                        let head = data.split_to(MAX_CHUNK_BYTES);
                        yield Ok(Answer { part: Some(Part::Chunk(AnswerChunk { data: head })) });
                    }
                    if !data.is_empty() {
                        yield Ok(Answer { part: Some(Part::Chunk(AnswerChunk { data })) });
                    }
                }
            }
        }
        let (found, text) = scanner.finish_with_text();
        let usage = match (found, counter) {
            (Some(usage), _) => usage,
            (None, Some(counter)) if response.status < 300 => {
                count_usage(counter, req.path.clone(), req.body.clone(), text).await
            }
            (None, _) => {
                if response.status < 300 {
                    tracing::warn!("engine reported no usage for a request and the worker has no tokenizer for its model; billing zero tokens");
                }
                Default::default()
            }
        };
        shared.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        shared.stats.prompt_tokens.fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        shared.stats.completion_tokens.fetch_add(usage.completion_tokens, Ordering::Relaxed);
        let usage = Usage {
            prompt_tokens: usage.prompt_tokens,
            cached_tokens: usage.cached_tokens,
            completion_tokens: usage.completion_tokens,
            reasoning_tokens: usage.reasoning_tokens,
        };
        metered.succeed(Some(&usage));
        yield Ok(Answer { part: Some(Part::End(AnswerEnd {
            usage: Some(usage),
            cost: None,
            coefficient: req.coefficient,
            usage_from_engine: found.is_some(),
        }))});
    }
}

/// Counts a request's tokens with the model's own tokenizer (off the async threads: a long
/// prompt takes a few milliseconds to tokenize).
async fn count_usage(
    counter: Arc<dyn cocoon_engine::TokenCounter>,
    path: String,
    body: bytes::Bytes,
    text: String,
) -> cocoon_engine::Usage {
    let counted = tokio::task::spawn_blocking(move || {
        let prompt = counter.count_prompt(&path, &body);
        (prompt, counter.count_text(&text))
    })
    .await;
    match counted {
        Ok((Ok(prompt_tokens), completion_tokens)) => cocoon_engine::Usage {
            prompt_tokens,
            completion_tokens,
            ..Default::default()
        },
        Ok((Err(e), completion_tokens)) => {
            tracing::warn!("cannot count prompt tokens ({e}); billing the answer only");
            cocoon_engine::Usage {
                completion_tokens,
                ..Default::default()
            }
        }
        Err(e) => {
            tracing::error!("token counting failed: {e}");
            Default::default()
        }
    }
}

/// Decrements the active-request gauge when a relay ends, however it ends.
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

fn scopeguard(shared: Arc<Shared>) -> ActiveGuard {
    ActiveGuard(shared)
}
