//! Running one request: admit it, choose a worker, relay the answer, price it.
//! Parts are passed through as received (no re-encoding of bodies); only the final
//! `end` part is completed with the cost.

use crate::continuation::{continue_body, Delivered};
use crate::money::Ticket;
use crate::routing::Outcome;
use crate::workers::Slot;
use crate::Shared;
use cocoon_ledger::{Address, Charge, TokenCounts};
use cocoon_proto::{
    answer::Part, Answer, AnswerChunk, AnswerError, ClientRunRequest, Cost, ErrorCode, Usage,
    WorkerRunRequest, INFERENCE_PATHS, MAX_BODY_BYTES,
};
use futures::Stream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::Status;

/// Tries per request when a worker fails before answering (DESIGN §4 failure paths).
const MAX_ATTEMPTS: usize = 2;
/// Times one answer may move to another worker after streaming began.
const MAX_FAILOVERS: usize = 2;
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
        // Held until the answer ends (or the client goes away and drops this stream).
        let _admitted = match shared.inflight.admit(req.body.len()) {
            Ok(a) => a,
            Err(busy) => {
                shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                yield Ok(error(ErrorCode::Overloaded, busy.to_string(), false));
                return;
            }
        };
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
        // Streams go to the app in whole events, noting what the app has, so that another
        // worker can continue the answer if this one fails mid-answer.
        let mut delivered = req.stream.then(Delivered::default);
        let mut body = req.body.clone();
        let mut max_tokens = req.max_tokens;
        // Set once a worker failed mid-answer: what it delivered and was billed.
        let mut earlier: Option<Earlier> = None;
        let mut failovers = 0;
        while tried.len() < MAX_ATTEMPTS + failovers {
            // The app already has the head (and part of the answer) from an earlier worker.
            let continuing = earlier.is_some();
            let slot: Slot = match shared.workers.choose(&req.model, req.max_coefficient, &tried) {
                Ok(s) => s,
                Err(no) => {
                    // After a failed attempt, report what actually went wrong.
                    let answer = match (continuing, last_error.take()) {
                        (false, Some(e)) => e,
                        (false, None) => error(no.code, no.message, false),
                        (true, _) => error(ErrorCode::Upstream, format!("the worker failed mid-answer and no other could continue it ({})", no.message), true),
                    };
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    yield Ok(answer);
                    return;
                }
            };
            let worker = slot.0.clone();
            shared.stats.retries.fetch_add(u64::from(!tried.is_empty() && !continuing), Ordering::Relaxed);
            tried.push(worker.id);
            let coefficient = worker.coefficient.load(Ordering::Relaxed);
            let remaining = deadline.saturating_duration_since(Instant::now());
            // Leave the worker a little less than we have, so its deadline error reaches
            // us before ours fires.
            let worker_budget = remaining.mul_f64(0.95);
            let mut call = tonic::Request::new(WorkerRunRequest {
                request_id: rand::random::<[u8; 16]>().to_vec().into(),
                path: req.path.clone(),
                body: body.clone(),
                max_tokens,
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
                    yield Ok(error(ErrorCode::Deadline, "deadline passed before a worker answered", continuing));
                    return;
                }
                Ok(Err(status)) => {
                    worker.failed.fetch_add(1, Ordering::Relaxed);
                    shared.workers.record(&worker, Outcome::Failure);
                    last_error = Some(error(ErrorCode::Upstream, format!("worker failed: {}", status.message()), continuing));
                    continue;
                }
                Ok(Ok(response)) => response.into_inner(),
            };
            // Whether this worker's head arrived: from then on its failure is mid-answer.
            let mut head_seen = false;
            let (code, message, reported) = loop {
                let next = tokio::time::timeout_at(deadline, answers.message()).await;
                let part = match next {
                    Err(_) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Deadline, "deadline passed while the worker was answering", head_seen || continuing));
                        return;
                    }
                    Ok(Err(status)) => {
                        worker.failed.fetch_add(1, Ordering::Relaxed);
                        shared.workers.record(&worker, Outcome::Failure);
                        if !head_seen {
                            last_error = Some(error(ErrorCode::Upstream, format!("worker link failed: {}", status.message()), continuing));
                            break (ErrorCode::Unspecified, String::new(), None);
                        }
                        break (ErrorCode::Upstream, "worker link lost mid-answer".to_owned(), None);
                    }
                    Ok(Ok(None)) => {
                        worker.failed.fetch_add(1, Ordering::Relaxed);
                        shared.workers.record(&worker, Outcome::Failure);
                        if !head_seen {
                            last_error = Some(error(ErrorCode::Protocol, "worker ended the answer without a result", continuing));
                        }
                        break (ErrorCode::Protocol, "worker ended the answer without a result".to_owned(), None);
                    }
                    Ok(Ok(Some(Answer { part: None }))) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Protocol, "worker sent an empty answer part", head_seen || continuing));
                        return;
                    }
                    Ok(Ok(Some(Answer { part: Some(p) }))) => p,
                };
                match part {
                    Part::Head(h) => {
                        if head_seen {
                            shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                            yield Ok(error(ErrorCode::Protocol, "worker sent two answer heads", true));
                            return;
                        }
                        head_seen = true;
                        if !continuing {
                            yield Ok(Answer { part: Some(Part::Head(h)) });
                        } else if h.status != 200 {
                            break (ErrorCode::Upstream, format!("the worker continuing the answer got HTTP {} from its engine", h.status), None);
                        }
                    }
                    Part::Chunk(c) if head_seen => {
                        first_byte.get_or_insert_with(Instant::now);
                        let data = match delivered.as_mut() {
                            Some(d) => d.push(&c.data),
                            None => c.data,
                        };
                        if !data.is_empty() {
                            yield Ok(Answer { part: Some(Part::Chunk(AnswerChunk { data })) });
                        }
                    }
                    Part::Chunk(_) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(error(ErrorCode::Protocol, "worker sent a chunk before the head", continuing));
                        return;
                    }
                    Part::End(mut end) => {
                        if let Some(rest) = delivered.as_mut().map(Delivered::finish).filter(|r| !r.is_empty()) {
                            yield Ok(Answer { part: Some(Part::Chunk(AnswerChunk { data: rest })) });
                        }
                        let usage = end.usage.unwrap_or_default();
                        shared.workers.record(&worker, success(call_start, first_byte, usage.completion_tokens, req.stream));
                        let params = shared.config.chain.registry().params.clone();
                        let charge = params.charge(token_counts(&usage), coefficient);
                        let billed = match ticket.take() {
                            Some(t) => t.settle(worker.contract, charge.adjusted_tokens()),
                            None => charge.adjusted_tokens(),
                        };
                        let mut cost = billed_cost(&charge, billed, params.price_per_token);
                        end.coefficient = coefficient;
                        if let Some(e) = earlier.take() {
                            // One answer from several workers: the app sees the usage and
                            // cost of all of it in one usage event, written by its client
                            // (the last worker's own usage event was dropped).
                            end.usage = Some(add_usage(&e.usage, &usage));
                            end.usage_from_engine = false;
                            cost = add_cost(&e.cost, &cost);
                        }
                        end.cost = Some(cost);
                        worker.served.fetch_add(1, Ordering::Relaxed);
                        shared.stats.succeeded.fetch_add(1, Ordering::Relaxed);
                        shared.stats.adjusted_tokens.fetch_add(billed, Ordering::Relaxed);
                        yield Ok(Answer { part: Some(Part::End(end)) });
                        cocoon_net::drain_trailers(&mut answers).await;
                        return;
                    }
                    Part::Error(e) => {
                        cocoon_net::drain_trailers(&mut answers).await;
                        let fault = worker_fault(e.code);
                        if fault {
                            shared.workers.record(&worker, Outcome::Failure);
                        }
                        if !head_seen && retryable(e.code) {
                            last_error = Some(Answer { part: Some(Part::Error(AnswerError { stream_started: continuing, ..e })) });
                            break (ErrorCode::Unspecified, String::new(), None);
                        }
                        if head_seen && fault {
                            break (ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Upstream), e.message, e.usage);
                        }
                        // Tokens delivered before the failure are billed (DESIGN §4).
                        if let (Some(usage), true) = (e.usage.as_ref(), head_seen) {
                            let charge = shared.config.chain.registry().params.charge(token_counts(usage), coefficient);
                            if let Some(t) = ticket.take() {
                                t.settle(worker.contract, charge.adjusted_tokens());
                            }
                        }
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        yield Ok(Answer { part: Some(Part::Error(AnswerError { stream_started: head_seen || continuing, ..e })) });
                        return;
                    }
                }
            };
            if !head_seen {
                // Nothing of this worker reached the app: another one may take the request.
                continue;
            }
            // The worker failed mid-answer. It is paid for what it delivered: its own
            // count when it sent one, else the content events the app received from it.
            let tally = delivered.as_ref().map_or(0, Delivered::current_tokens);
            let counts = reported.as_ref().map_or(
                TokenCounts { completion: tally, ..TokenCounts::default() },
                token_counts,
            );
            let params = shared.config.chain.registry().params.clone();
            let charge = params.charge(counts, coefficient);
            let billed = match ticket.as_mut() {
                Some(t) => t.settle_part(worker.contract, charge.adjusted_tokens()),
                None => charge.adjusted_tokens(),
            };
            shared.stats.adjusted_tokens.fetch_add(billed, Ordering::Relaxed);
            let so_far = earlier.get_or_insert_with(Earlier::default);
            so_far.usage = add_usage(&so_far.usage, &usage_of(&counts));
            so_far.cost = add_cost(&so_far.cost, &billed_cost(&charge, billed, params.price_per_token));
            // Continue on another worker from what the app has, if the answer allows it.
            let handover = (failovers < MAX_FAILOVERS)
                .then(|| delivered.as_mut().and_then(Delivered::hand_over))
                .flatten();
            let next = handover.and_then(|h| {
                let left = u64::from(req.max_tokens).checked_sub(h.total_tokens).filter(|l| *l > 0)?;
                let body = continue_body(&req.path, &req.body, &h.text)?;
                Some((body, u32::try_from(left).unwrap_or(u32::MAX)))
            });
            match next {
                Some((next_body, left)) if Instant::now() < deadline => {
                    tracing::warn!(worker = worker.id, "worker failed mid-answer ({message}); continuing on another worker");
                    body = next_body.into();
                    max_tokens = left;
                    failovers += 1;
                    shared.stats.failovers.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                    yield Ok(Answer { part: Some(Part::Error(AnswerError {
                        code: code as i32,
                        message,
                        usage: earlier.as_ref().map(|e| e.usage),
                        stream_started: true,
                    })) });
                    return;
                }
            }
            drop(slot);
        }
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        yield Ok(last_error.unwrap_or_else(|| error(ErrorCode::NoCapacity, "no worker could take the request", earlier.is_some())));
    }
}

/// What the workers that failed mid-answer delivered and were billed.
#[derive(Default)]
struct Earlier {
    usage: Usage,
    cost: Cost,
}

fn usage_of(c: &TokenCounts) -> Usage {
    Usage {
        prompt_tokens: c.prompt,
        cached_tokens: c.cached,
        completion_tokens: c.completion,
        reasoning_tokens: c.reasoning,
    }
}

fn add_usage(a: &Usage, b: &Usage) -> Usage {
    Usage {
        prompt_tokens: a.prompt_tokens.saturating_add(b.prompt_tokens),
        cached_tokens: a.cached_tokens.saturating_add(b.cached_tokens),
        completion_tokens: a.completion_tokens.saturating_add(b.completion_tokens),
        reasoning_tokens: a.reasoning_tokens.saturating_add(b.reasoning_tokens),
    }
}

fn add_cost(a: &Cost, b: &Cost) -> Cost {
    Cost {
        prompt_cost: a.prompt_cost.saturating_add(b.prompt_cost),
        completion_cost: a.completion_cost.saturating_add(b.completion_cost),
        total_cost: a.total_cost.saturating_add(b.total_cost),
        adjusted_tokens: a.adjusted_tokens.saturating_add(b.adjusted_tokens),
    }
}
