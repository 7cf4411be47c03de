//! Cocoon's built-in CPU engine: any GGUF instruct model through llama.cpp, in process.
//!
//! [`LlamaEngine`] implements the same [`Engine`] trait as the HTTP upstream, speaking
//! OpenAI JSON and SSE, so a worker treats it exactly like vLLM or llama.cpp's server.
//! Requests are parsed and tokenized on the async side, queued (bounded), and decoded by one
//! dedicated thread that batches every running request into each step. Dropping a response
//! cancels its generation and frees its slot at the next step.
//!
//! [`GgufTokenizer`] loads only the vocabulary and chat template of a GGUF file so a worker can
//! count tokens itself when an external engine reports no usage.

pub mod fetch;
mod model;
pub mod prompt;
pub mod request;
mod response;
mod scheduler;
pub mod stop;

pub use model::{Model, ModelError};
pub use scheduler::Finish;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use bytes::Bytes;
use cocoon_engine::{Engine, EngineError, EngineResponse, TokenCounter};
use futures::StreamExt;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedReceiver;

use request::{BadRequest, Endpoint, GenRequest};
use response::Meta;
use scheduler::{Event, Job, Load, Shape};

/// Settings of the built-in engine.
#[derive(Clone, Debug)]
pub struct LlamaConfig {
    /// The GGUF file.
    pub model_path: PathBuf,
    /// Requests decoded at once (each gets its own slice of the KV cache).
    pub slots: u32,
    /// Context length of each slot in tokens (prompt + answer); capped at the model's
    /// training context.
    pub context_per_slot: u32,
    /// CPU threads for decoding; None = half the logical cores (one per physical core on
    /// SMT machines). More threads than free cores is much slower, not faster: ggml's
    /// threads wait for each other at every layer.
    pub threads: Option<u32>,
    /// Requests waiting for a slot before new ones are refused with 503.
    pub queue: usize,
}

impl LlamaConfig {
    pub fn new(model_path: PathBuf) -> Self {
        Self {
            model_path,
            slots: 4,
            context_per_slot: 4096,
            threads: None,
            queue: 64,
        }
    }
}

/// Errors starting the built-in engine.
#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{0}")]
    Context(String),
    #[error("invalid engine settings: {0}")]
    Config(String),
}

/// The built-in engine. Cheap to clone; the decode thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct LlamaEngine {
    model: Arc<Model>,
    jobs: SyncSender<Job>,
    load: Arc<Load>,
    context_per_slot: u32,
}

impl std::fmt::Debug for LlamaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaEngine")
            .field("context_per_slot", &self.context_per_slot)
            .finish_non_exhaustive()
    }
}

impl LlamaEngine {
    /// Loads the model and starts the decode thread. Blocking (loading takes a moment):
    /// call it from `spawn_blocking` in async code.
    pub fn load(config: &LlamaConfig) -> Result<Self, LlamaError> {
        if config.slots == 0 || config.slots > 64 {
            return Err(LlamaError::Config("slots must be 1 to 64".into()));
        }
        if config.context_per_slot < 64 {
            return Err(LlamaError::Config(
                "context per slot must be at least 64 tokens".into(),
            ));
        }
        let model = Arc::new(Model::load(&config.model_path)?);
        let context_per_slot = config.context_per_slot.min(model.train_context.max(64));
        let threads = config.threads.unwrap_or_else(default_threads);
        let shape = Shape {
            slots: config.slots,
            context_per_slot,
            threads: threads.max(1),
        };
        let (jobs, receiver) = std::sync::mpsc::sync_channel(config.queue.max(1));
        let load = Arc::new(Load::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_model = model.clone();
        let thread_load = load.clone();
        std::thread::Builder::new()
            .name("cocoon-llama".into())
            .spawn(move || scheduler::run(thread_model, shape, receiver, thread_load, ready_tx))
            .map_err(|e| LlamaError::Context(format!("cannot start the decode thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(LlamaError::Context(e)),
            Err(_) => return Err(LlamaError::Context("decode thread ended at start".into())),
        }
        tracing::info!(
            path = %config.model_path.display(),
            slots = shape.slots,
            context_per_slot,
            threads = shape.threads,
            "built-in engine ready"
        );
        Ok(Self {
            model,
            jobs,
            load,
            context_per_slot,
        })
    }

    /// Requests being decoded now.
    pub fn active(&self) -> usize {
        self.load.active.load(Ordering::Relaxed)
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.load.queued.load(Ordering::Relaxed)
    }

    /// Parses, templates and tokenizes; the prompt must leave room for one answer token.
    fn prepare(
        &self,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<(GenRequest, Vec<LlamaToken>), BadRequest> {
        let req = request::parse(endpoint, body)?;
        let text = self
            .model
            .prompt_text(&req.input)
            .map_err(|e| BadRequest(e.to_string()))?;
        let tokens = self.model.tokenize_prompt(&text);
        if tokens.is_empty() {
            return Err(BadRequest("the prompt is empty".into()));
        }
        if tokens.len() as u64 >= u64::from(self.context_per_slot) {
            return Err(BadRequest(format!(
                "the prompt is {} tokens; this engine's context is {} tokens per request",
                tokens.len(),
                self.context_per_slot
            )));
        }
        Ok((req, tokens))
    }
}

/// Half the logical cores, at least one.
pub fn default_threads() -> u32 {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    (logical / 2).max(1)
}

fn json_response(status: u16, body: Bytes) -> EngineResponse {
    EngineResponse {
        status,
        content_type: Some("application/json".into()),
        body: futures::stream::once(async move { Ok(body) }).boxed(),
    }
}

#[async_trait::async_trait]
impl Engine for LlamaEngine {
    async fn health(&self) -> Result<(), EngineError> {
        if self.load.alive.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(EngineError::Unreachable(
                "built-in engine's decode thread is not running".into(),
            ))
        }
    }

    async fn call(&self, path: &str, body: Bytes) -> Result<EngineResponse, EngineError> {
        let Some(endpoint) = Endpoint::from_path(path) else {
            return Ok(json_response(
                404,
                response::error_body(&format!("unknown path {path}"), "not_found_error"),
            ));
        };
        let engine = self.clone();
        let prepared = tokio::task::spawn_blocking(move || engine.prepare(endpoint, &body))
            .await
            .map_err(|e| EngineError::Http(format!("prompt preparation failed: {e}")))?;
        let (req, prompt) = match prepared {
            Ok(p) => p,
            Err(BadRequest(msg)) => {
                return Ok(json_response(
                    400,
                    response::error_body(&msg, "invalid_request_error"),
                ))
            }
        };
        let room = self.context_per_slot - prompt.len() as u32;
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let job = Job {
            prompt,
            max_tokens: req.max_tokens.unwrap_or(u32::MAX).min(room),
            stop: req.stop.clone(),
            sampling: req.sampling.clone(),
            events,
        };
        if job.max_tokens == 0 {
            let meta = Meta::new(endpoint, req.model.clone());
            let n = job.prompt.len() as u32;
            return Ok(if req.stream {
                let mut chunks = vec![meta.chunk(Some(""), true, Some(Finish::Length))];
                if req.include_usage {
                    chunks.push(meta.usage_chunk(n, 0));
                }
                chunks.push(Bytes::from_static(response::DONE));
                sse_response(futures::stream::iter(chunks.into_iter().map(Ok)).boxed())
            } else {
                json_response(200, meta.full("", Finish::Length, n, 0))
            });
        }
        self.load.queued.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.load.queued.fetch_sub(1, Ordering::Relaxed);
                return Ok(json_response(
                    503,
                    response::error_body(
                        "the engine's queue is full; retry shortly",
                        "server_overloaded",
                    ),
                ));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.load.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(EngineError::Unreachable(
                    "built-in engine's decode thread is not running".into(),
                ));
            }
        }
        let meta = Meta::new(endpoint, req.model.clone());
        Ok(if req.stream {
            sse_response(stream_answer(meta, receiver, req.include_usage))
        } else {
            EngineResponse {
                status: 200,
                content_type: Some("application/json".into()),
                body: futures::stream::once(whole_answer(meta, receiver)).boxed(),
            }
        })
    }
}

fn sse_response(
    body: futures::stream::BoxStream<'static, Result<Bytes, EngineError>>,
) -> EngineResponse {
    EngineResponse {
        status: 200,
        content_type: Some("text/event-stream".into()),
        body,
    }
}

/// Server-sent events as tokens arrive. A decode failure ends the body with an error, which
/// the worker reports as an engine failure (never as a clean, short answer).
fn stream_answer(
    meta: Meta,
    mut events: UnboundedReceiver<Event>,
    include_usage: bool,
) -> futures::stream::BoxStream<'static, Result<Bytes, EngineError>> {
    async_stream_like(move |tx| async move {
        let mut first = true;
        // An event taken while coalescing text that is not text: handled next.
        let mut pending: Option<Event> = None;
        loop {
            let next = match pending.take() {
                Some(event) => Some(event),
                None => events.recv().await,
            };
            match next {
                Some(Event::Text(text)) => {
                    // Coalesce what is already waiting into one event.
                    let mut text = text;
                    while let Ok(event) = events.try_recv() {
                        match event {
                            Event::Text(more) => text.push_str(&more),
                            other => {
                                pending = Some(other);
                                break;
                            }
                        }
                    }
                    if tx
                        .send(Ok(meta.chunk(Some(&text), first, None)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    first = false;
                }
                Some(Event::Done {
                    finish,
                    prompt_tokens,
                    completion_tokens,
                }) => {
                    let mut out = Vec::new();
                    out.extend_from_slice(&meta.chunk(first.then_some(""), first, Some(finish)));
                    if include_usage {
                        out.extend_from_slice(&meta.usage_chunk(prompt_tokens, completion_tokens));
                    }
                    out.extend_from_slice(response::DONE);
                    let _ = tx.send(Ok(Bytes::from(out))).await;
                    return;
                }
                Some(Event::Failed(e)) => {
                    let _ = tx.send(Err(EngineError::Http(e))).await;
                    return;
                }
                None => {
                    let _ = tx
                        .send(Err(EngineError::Http("built-in engine stopped".into())))
                        .await;
                    return;
                }
            }
        }
    })
}

/// Collects a whole answer for a non-streaming request.
async fn whole_answer(
    meta: Meta,
    mut events: UnboundedReceiver<Event>,
) -> Result<Bytes, EngineError> {
    let mut text = String::new();
    loop {
        match events.recv().await {
            Some(Event::Text(t)) => text.push_str(&t),
            Some(Event::Done {
                finish,
                prompt_tokens,
                completion_tokens,
            }) => return Ok(meta.full(&text, finish, prompt_tokens, completion_tokens)),
            Some(Event::Failed(e)) => return Err(EngineError::Http(e)),
            None => return Err(EngineError::Http("built-in engine stopped".into())),
        }
    }
}

/// A stream fed by a task through a small channel; dropping the stream drops the task's
/// receiver side, which ends the task and with it the decode events receiver.
fn async_stream_like<F, Fut>(
    f: F,
) -> futures::stream::BoxStream<'static, Result<Bytes, EngineError>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, EngineError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(f(tx));
    // Abort the producer when the consumer goes away even if it is waiting on the model.
    let guard = AbortOnDrop(task);
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|item| (item, (rx, guard)))
    })
    .boxed()
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Token counting from a GGUF file's vocabulary and chat template, for engines that report
/// no usage. Counts exactly what the built-in engine would feed and generate.
pub struct GgufTokenizer {
    model: Model,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer").finish_non_exhaustive()
    }
}

impl GgufTokenizer {
    /// Loads the vocabulary and chat template (not the weights).
    pub fn open(path: &std::path::Path) -> Result<Self, ModelError> {
        Ok(Self {
            model: Model::load_vocab(path)?,
        })
    }
}

impl TokenCounter for GgufTokenizer {
    fn count_prompt(&self, path: &str, body: &[u8]) -> Result<u64, String> {
        let endpoint = Endpoint::from_path(path).ok_or_else(|| format!("unknown path {path}"))?;
        let req = request::parse_input(endpoint, body).map_err(|e| e.0)?;
        let text = self.model.prompt_text(&req).map_err(|e| e.to_string())?;
        Ok(self.model.tokenize_prompt(&text).len() as u64)
    }

    fn count_text(&self, text: &str) -> u64 {
        self.model.count_text(text)
    }
}
