//! Running one request: admit it, choose a worker, relay the answer, price it.
//! Parts are passed through as received (no re-encoding of bodies); only the final
//! `end` part is completed with the cost.

use crate::money::Ticket;
use crate::routing::Outcome;
use crate::workers::Slot;
use crate::Shared;
use cocoon_ledger::{Address, Charge, TokenCounts};
use cocoon_proto::{
    answer::Part, Answer, AnswerError, ClientRunRequest, Cost, ErrorCode, Usage, WorkerRunRequest,
    INFERENCE_PATHS, MAX_BODY_BYTES,
};
use futures::Stream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Status;

/// Tries per request when a worker fails before answering (DESIGN §4 failure paths).
const MAX_ATTEMPTS: usize = 2;
/// Longest deadline a client may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

fn error(code: ErrorCode, message: impl Into<String>, stream_started: bool) -> Answer {
    Answer {
        part: Some(Part::Error(AnswerError {
            code: code as i32,
            message: message.into(),
            usage: None,
            stream_started,
        })),
    }
}

fn validate(req: &ClientRunRequest) -> Result<(), String> {
    if !INFERENCE_PATHS.contains(&req.path.as_str()) {
        return Err(format!(
            "unsupported path {:?}",
            cocoon_proto::bounded_text(&req.path)
        ));
    }
    if req.model.is_empty() || req.model.len() > cocoon_proto::MAX_TEXT_BYTES {
        return Err("model name must be 1..4096 bytes".into());
    }
    if req.body.len() > MAX_BODY_BYTES {
        return Err(format!("body larger than {MAX_BODY_BYTES} bytes"));
    }
    if req.timeout_ms == 0 {
        return Err("timeout must be positive".into());
    }
    Ok(())
}

/// Whether a failure before the first byte may be retried on another worker.
fn retryable(code: i32) -> bool {
    [
        ErrorCode::Overloaded,
        ErrorCode::NoCapacity,
        ErrorCode::Upstream,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

/// Upper bound of a prompt's tokens before the worker counts them: BPE tokens are at least
/// a byte of the body, and chat templates add a few per message.
fn prompt_estimate(req: &ClientRunRequest) -> u64 {
    req.body.len() as u64 + 256
}

/// The cost of a request billed `billed` of its `charge.adjusted_tokens()` (less only when
/// a worker reported usage above the reservation).
fn billed_cost(charge: &Charge, billed: u64, price_per_token: u64) -> Cost {
    let adjusted = charge.adjusted_tokens();
    if billed >= adjusted {
        return Cost {
            prompt_cost: charge.prompt_cost,
            completion_cost: charge.completion_cost,
            total_cost: charge.total_cost,
            adjusted_tokens: adjusted,
        };
    }
    let total = billed.saturating_mul(price_per_token);
    let prompt = charge.prompt_cost.min(total);
    Cost {
        prompt_cost: prompt,
        completion_cost: total - prompt,
        total_cost: total,
        adjusted_tokens: billed,
    }
}

/// Errors that count against the worker's reputation and breaker (not the app's fault,
/// not a capacity signal).
fn worker_fault(code: i32) -> bool {
    [
        ErrorCode::Upstream,
        ErrorCode::Internal,
        ErrorCode::Protocol,
    ]
    .iter()
    .any(|c| *c as i32 == code)
}

/// A finished request's measurements. Streamed: time to the first chunk and decode speed
/// after it. Not streamed: the body arrives whole, so only the overall speed is known.
fn success(
    call_start: Instant,
    first_byte: Option<Instant>,
    completion_tokens: u64,
    stream: bool,
) -> Outcome {
    let end = Instant::now();
    // A floor keeps near-instant engines measurable (and very fast) instead of unknown.
    let rate = |tokens: u64, from: Instant| {
        (tokens > 0)
            .then(|| tokens as f64 / end.saturating_duration_since(from).as_secs_f64().max(0.001))
    };
    match first_byte {
        Some(first) if stream => Outcome::Success {
            ttft: Some(first.saturating_duration_since(call_start)),
            tokens_per_s: rate(completion_tokens.saturating_sub(1), first),
        },
        _ => Outcome::Success {
            ttft: None,
            tokens_per_s: rate(completion_tokens, call_start),
        },
    }
}

fn token_counts(usage: &Usage) -> TokenCounts {
    TokenCounts {
        prompt: usage.prompt_tokens,
        cached: usage.cached_tokens,
        completion: usage.completion_tokens,
        reasoning: usage.reasoning_tokens,
    }
}

pub(crate) fn relay(
    shared: Arc<Shared>,
    req: ClientRunRequest,
    client: Option<Address>,
) -> impl Stream<Item = Result<Answer, Status>> + Send {
    async_stream::stream! {
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(msg) = validate(&req) {
            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
            yield Ok(error(ErrorCode::BadRequest, msg, false));
            return;
        }
        // Admission (DESIGN §4): reserve the worst case against the client's credit. The
        // ticket settles at the end; dropped unsettled, it frees the reservation.
        let mut ticket: Option<Ticket> = match (&shared.payments, client) {
            (Some(p), Some(c)) => match p.admit(&c, prompt_estimate(&req), u64::from(req.max_tokens), req.max_coefficient) {
                Ok(t) => Some(t),
                Err((code, message)) => {
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    yield Ok(error(code, message, false));
                    return;
                }
            },
            (Some(_), None) => {
                shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                yield Ok(error(ErrorCode::Unauthorized, "client link is not authorized for payments", false));
                return;
            }
            _ => None,
        };
        let timeout = Duration::from_millis(u64::from(req.timeout_ms)).min(MAX_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let mut tried = Vec::new();
        let mut last_error = None;
        while tried.len() < MAX_ATTEMPTS {
            let slot: Slot = match shared.workers.choose(&req.model, req.max_coefficient, &tried) {
                Ok(s) => s,
                Err(no) => {
                    // After a failed attempt, report what actually went wrong.
                    let answer = last_error.take().unwrap_or_else(|| error(no.code, no.message, false));
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    yield Ok(answer);
                    return;
                }
            };
            let worker = slot.0.clone();
            shared.stats.retries.fetch_add(u64::from(!tried.is_empty()), Ordering::Relaxed);
            tried.push(worker.id);
            let coefficient = worker.coefficient.load(Ordering::Relaxed);
            let remaining = deadline.saturating_duration_since(Instant::now());
            // Leave the worker a little less than we have, so its deadline error reaches
            // us before ours fires.
            let worker_budget = remaining.mul_f64(0.95);
            let mut call = tonic::Request::new(WorkerRunRequest {
                request_id: rand::random::<[u8; 16]>().to_vec().into(),
                path: req.path.clone(),
                body: req.body.clone(),
                max_tokens: req.max_tokens,
                coefficient,
                timeout_ms: u32::try_from(worker_budget.as_millis()).unwrap_or(u32::MAX).max(1),
                stream: req.stream,
                voucher: match (&shared.payments, worker.contract) {
                    (Some(p), Some(c)) => p.worker_voucher(&c).map(|v| cocoon_proto::money::voucher_to_wire(&v)),
                    _ => None,
                },
            });
            call.set_timeout(remaining);
            let call_start = Instant::now();
            let mut first_byte: Option<Instant> = None;
            let started = tokio::time::timeout_at(deadline, worker.client.clone().run(call)).await;
            let mut answers = match started {
                Err(_) => {
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    yield Ok(error(ErrorCode::Deadline, "deadline passed before a worker answered", false));
                    return;
                }
                Ok(Err(status)) => {
                    worker.failed.fetch_add(1, Ordering::Relaxed);
                    shared.workers.record(&worker, Outcome::Failure);
                    last_error = Some(error(ErrorCode::Upstream, format!("worker failed: {}", status.message()), false));
                    continue;
                }
                Ok(Ok(response)) => response.into_inner(),
            };
            let mut head_sent = false;
            loop {
                let next = tokio::time::timeout_at(deadline, answers.message()).await;
                let part = match next {
                    Err(_) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Deadline, "deadline passed while the worker was answering", head_sent));
                        return;
                    }
                    Ok(Err(status)) => {
                        worker.failed.fetch_add(1, Ordering::Relaxed);
                    shared.workers.record(&worker, Outcome::Failure);
                        if !head_sent {
                            last_error = Some(error(ErrorCode::Upstream, format!("worker link failed: {}", status.message()), false));
                            break;
                        }
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Upstream, "worker link lost mid-answer", true));
                        return;
                    }
                    Ok(Ok(None)) => {
                        worker.failed.fetch_add(1, Ordering::Relaxed);
                    shared.workers.record(&worker, Outcome::Failure);
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Protocol, "worker ended the answer without a result", head_sent));
                        return;
                    }
                    Ok(Ok(Some(Answer { part: None }))) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Protocol, "worker sent an empty answer part", head_sent));
                        return;
                    }
                    Ok(Ok(Some(Answer { part: Some(p) }))) => p,
                };
                match part {
                    Part::Head(h) => {
                        if head_sent {
                            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                            yield Ok(error(ErrorCode::Protocol, "worker sent two answer heads", true));
                            return;
                        }
                        head_sent = true;
                        yield Ok(Answer { part: Some(Part::Head(h)) });
                    }
                    Part::Chunk(c) if head_sent => {
                        first_byte.get_or_insert_with(Instant::now);
                        yield Ok(Answer { part: Some(Part::Chunk(c)) })
                    }
                    Part::Chunk(_) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Protocol, "worker sent a chunk before the head", false));
                        return;
                    }
                    Part::End(mut end) => {
                        let usage = end.usage.unwrap_or_default();
                        shared.workers.record(&worker, success(call_start, first_byte, usage.completion_tokens, req.stream));
                        let params = shared.config.chain.registry().params.clone();
                        let charge = params.charge(token_counts(&usage), coefficient);
                        let billed = match ticket.take() {
                            Some(t) => t.settle(worker.contract, charge.adjusted_tokens()),
                            None => charge.adjusted_tokens(),
                        };
                        end.coefficient = coefficient;
                        end.cost = Some(billed_cost(&charge, billed, params.price_per_token));
                        worker.served.fetch_add(1, Ordering::Relaxed);
                        shared.stats.succeeded.fetch_add(1, Ordering::Relaxed);
                        shared.stats.adjusted_tokens.fetch_add(billed, Ordering::Relaxed);
                        yield Ok(Answer { part: Some(Part::End(end)) });
                        cocoon_net::drain_trailers(&mut answers).await;
                        return;
                    }
                    Part::Error(e) => {
                        cocoon_net::drain_trailers(&mut answers).await;
                        if worker_fault(e.code) {
                            shared.workers.record(&worker, Outcome::Failure);
                        }
                        if !head_sent && retryable(e.code) {
                            last_error = Some(Answer { part: Some(Part::Error(e)) });
                            break;
                        }
                        // Tokens delivered before the failure are billed (DESIGN §4).
                        if let (Some(usage), true) = (e.usage.as_ref(), head_sent) {
                            let charge = shared.config.chain.registry().params.charge(token_counts(usage), coefficient);
                            if let Some(t) = ticket.take() {
                                t.settle(worker.contract, charge.adjusted_tokens());
                            }
                        }
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(Answer { part: Some(Part::Error(AnswerError { stream_started: head_sent, ..e })) });
                        return;
                    }
                }
            }
            drop(slot);
        }
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        yield Ok(last_error.unwrap_or_else(|| error(ErrorCode::NoCapacity, "no worker could take the request", false)));
    }
}
