//! The decode thread: continuous batching of up to `slots` sequences in one llama.cpp
//! context. Every step decodes one batch holding the next prompt chunk of newly admitted
//! requests and one token of every generating request, so concurrent requests share the
//! weights' memory bandwidth instead of waiting for each other.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::model::{backend, Model};
use crate::request::Sampling;
use crate::stop::StopMatcher;

/// Tokens decoded per step at most (prompt chunks are split to fit).
pub const BATCH_TOKENS: u32 = 512;

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The model ended its turn or a stop sequence matched.
    Stop,
    /// `max_tokens` or the context ran out.
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// What the decode thread tells a request.
#[derive(Debug)]
pub enum Event {
    /// More answer text (never part of a stop sequence).
    Text(String),
    Done {
        finish: Finish,
        prompt_tokens: u32,
        completion_tokens: u32,
    },
    Failed(String),
}

/// One request for the decode thread.
pub struct Job {
    pub prompt: Vec<LlamaToken>,
    /// Already capped by the room left in a slot's context.
    pub max_tokens: u32,
    pub stop: Vec<String>,
    pub sampling: Sampling,
    /// Dropped by the receiver when the request goes away: the sequence is then cancelled.
    pub events: UnboundedSender<Event>,
}

/// Shape of the decode thread's context.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub slots: u32,
    pub context_per_slot: u32,
    pub threads: u32,
}

/// Counters the engine reads for health and stats.
#[derive(Debug, Default)]
pub struct Load {
    pub alive: AtomicBool,
    pub active: AtomicUsize,
    pub queued: AtomicUsize,
}

struct Seq {
    id: i32,
    job: Job,
    sampler: LlamaSampler,
    /// Prompt tokens already in the KV cache.
    prompt_done: usize,
    /// Positions filled in the KV cache.
    n_past: u32,
    /// Sampled token not yet fed back.
    next_input: Option<LlamaToken>,
    /// Index in the current batch whose logits this sequence samples from.
    logits_at: Option<i32>,
    completion: u32,
    utf8: encoding_rs::Decoder,
    stops: StopMatcher,
}

/// Creates the context and runs the decode loop until every job sender is gone.
/// `ready` gets the context-creation result before any job is taken.
pub fn run(
    model: Arc<Model>,
    shape: Shape,
    jobs: Receiver<Job>,
    load: Arc<Load>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let made = backend().map_err(|e| e.to_string()).and_then(|backend| {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(shape.slots * shape.context_per_slot))
            .with_n_batch(BATCH_TOKENS)
            .with_n_ubatch(BATCH_TOKENS)
            .with_n_seq_max(shape.slots)
            .with_kv_unified(false)
            .with_n_threads(shape.threads as i32)
            .with_n_threads_batch(shape.threads as i32);
        model
            .llama
            .new_context(backend, params)
            .map_err(|e| format!("cannot create a llama.cpp context: {e}"))
    });
    let mut ctx = match made {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    load.alive.store(true, Ordering::SeqCst);
    let _ = ready.send(Ok(()));
    // A panic in here (a bug, or llama.cpp misbehaving) must not take the process down; the
    // engine then reports itself unhealthy and its requests see their channels close.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_loop(&model, &mut ctx, shape, &jobs, &load)
    }));
    if outcome.is_err() {
        tracing::error!("built-in engine decode thread panicked; engine is down");
    }
    load.alive.store(false, Ordering::SeqCst);
}

fn decode_loop(
    model: &Model,
    ctx: &mut LlamaContext<'_>,
    shape: Shape,
    jobs: &Receiver<Job>,
    load: &Load,
) {
    let vocab = model.llama.vocab();
    let n_vocab = model.llama.n_vocab();
    let mut seqs: Vec<Option<Seq>> = (0..shape.slots).map(|_| None).collect();
    let mut batch = LlamaBatch::new(BATCH_TOKENS as usize, 1);
    loop {
        // Admit waiting jobs into free slots; sleep on the queue only when idle.
        while let Some(slot) = seqs.iter().position(Option::is_none) {
            let idle = seqs.iter().all(Option::is_none);
            let job = if idle {
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break,
                }
            };
            load.queued.fetch_sub(1, Ordering::Relaxed);
            if job.events.is_closed() {
                continue;
            }
            seqs[slot] = Some(Seq {
                id: slot as i32,
                sampler: sampler(&job.sampling, n_vocab),
                stops: StopMatcher::new(job.stop.clone()),
                job,
                prompt_done: 0,
                n_past: 0,
                next_input: None,
                logits_at: None,
                completion: 0,
                utf8: encoding_rs::UTF_8.new_decoder(),
            });
        }
        // Requests whose receiver went away (client gone, deadline) free their slot now.
        for entry in seqs.iter_mut() {
            if entry.as_ref().is_some_and(|s| s.job.events.is_closed()) {
                release(ctx, entry);
            }
        }
        count_active(load, &seqs);
        batch.clear();
        let mut budget = BATCH_TOKENS as usize;
        for seq in seqs.iter_mut().flatten() {
            seq.logits_at = None;
            if let Some(token) = seq.next_input {
                if budget == 0 {
                    continue;
                }
                if batch
                    .add(token, seq.n_past as i32, &[seq.id], true)
                    .is_err()
                {
                    continue;
                }
                seq.n_past += 1;
                seq.next_input = None;
                seq.logits_at = Some(batch.n_tokens() - 1);
                budget -= 1;
            } else if seq.prompt_done < seq.job.prompt.len() {
                let take = (seq.job.prompt.len() - seq.prompt_done).min(budget);
                for _ in 0..take {
                    let at = seq.prompt_done;
                    let last = at + 1 == seq.job.prompt.len();
                    if batch
                        .add(seq.job.prompt[at], seq.n_past as i32, &[seq.id], last)
                        .is_err()
                    {
                        break;
                    }
                    seq.n_past += 1;
                    seq.prompt_done += 1;
                    budget -= 1;
                    if last {
                        seq.logits_at = Some(batch.n_tokens() - 1);
                    }
                }
            }
        }
        if batch.n_tokens() == 0 {
            continue;
        }
        if let Err(e) = ctx.decode(&mut batch) {
            tracing::error!("llama.cpp decode failed: {e}");
            for entry in seqs.iter_mut() {
                if let Some(seq) = entry.as_ref() {
                    let _ = seq
                        .job
                        .events
                        .send(Event::Failed(format!("decode failed: {e}")));
                    release(ctx, entry);
                }
            }
            continue;
        }
        for entry in seqs.iter_mut() {
            let Some(seq) = entry.as_mut() else { continue };
            let Some(at) = seq.logits_at else { continue };
            let token = seq.sampler.sample(ctx, at);
            if let Some(finish) = step(seq, token, &vocab, shape.context_per_slot) {
                let _ = seq.job.events.send(Event::Done {
                    finish,
                    prompt_tokens: seq.job.prompt.len() as u32,
                    completion_tokens: seq.completion,
                });
                release(ctx, entry);
            }
        }
        count_active(load, &seqs);
    }
}

fn count_active(load: &Load, seqs: &[Option<Seq>]) {
    let active = seqs.iter().filter(|s| s.is_some()).count();
    load.active.store(active, Ordering::Relaxed);
}

/// Takes one sampled token; returns why the sequence ended, if it did.
fn step(
    seq: &mut Seq,
    token: LlamaToken,
    vocab: &llama_cpp_2::vocab::LlamaVocab<'_>,
    context_per_slot: u32,
) -> Option<Finish> {
    if vocab.is_eog(token) {
        flush(seq);
        return Some(Finish::Stop);
    }
    seq.completion += 1;
    let bytes = vocab.token_to_piece(token, false, None);
    let mut text = String::with_capacity(bytes.len() + 4);
    let _ = seq.utf8.decode_to_string(&bytes, &mut text, false);
    let pushed = seq.stops.push(&text);
    if !pushed.emit.is_empty() {
        let _ = seq.job.events.send(Event::Text(pushed.emit));
    }
    if pushed.stopped {
        return Some(Finish::Stop);
    }
    if seq.completion >= seq.job.max_tokens || seq.n_past + 1 >= context_per_slot {
        flush(seq);
        return Some(Finish::Length);
    }
    seq.next_input = Some(token);
    None
}

/// Sends text still held back (a partial UTF-8 character or a possible stop prefix).
fn flush(seq: &mut Seq) {
    let mut text = String::new();
    let _ = seq.utf8.decode_to_string(&[], &mut text, true);
    let pushed = seq.stops.push(&text);
    let mut rest = pushed.emit;
    if !pushed.stopped {
        rest.push_str(&seq.stops.finish());
    }
    if !rest.is_empty() {
        let _ = seq.job.events.send(Event::Text(rest));
    }
}

/// Frees a slot and its KV cache cells.
fn release(ctx: &mut LlamaContext<'_>, entry: &mut Option<Seq>) {
    if let Some(seq) = entry.take() {
        if let Err(e) = ctx.clear_kv_cache_seq(Some(seq.id as u32), None, None) {
            tracing::error!("cannot clear KV cache of slot {}: {e}", seq.id);
        }
    }
}

fn sampler(s: &Sampling, n_vocab: i32) -> LlamaSampler {
    let mut chain = Vec::new();
    if s.frequency_penalty != 0.0 || s.presence_penalty != 0.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            64,
            1.0,
            s.frequency_penalty,
            s.presence_penalty,
        ));
    }
    if s.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.push(LlamaSampler::top_p(s.top_p, 1));
        chain.push(LlamaSampler::temp(s.temperature));
        chain.push(LlamaSampler::dist(s.seed.unwrap_or_else(rand::random)));
    }
    LlamaSampler::chain_simple(chain)
}
