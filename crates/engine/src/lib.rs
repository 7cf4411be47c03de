//! Inference backends behind one trait ([`Engine`]), the OpenAI-compatible HTTP upstream
//! ([`HttpEngine`]), a deterministic test engine ([`test_engine`]) and the token-usage scanner
//! ([`usage`]). This crate knows nothing about payments: it only moves bytes and counts tokens.

mod file_hash;
mod http_engine;
pub mod test_engine;
pub mod usage;

pub use file_hash::sha256_file;
pub use http_engine::HttpEngine;
pub use usage::{Usage, UsageScanner};

use futures::stream::BoxStream;

/// Errors talking to an inference engine.
#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    /// The engine could not be connected to (refused, DNS, connect timeout).
    #[error("engine unreachable: {0}")]
    Unreachable(String),
    #[error("engine request timed out")]
    Timeout,
    /// Transport failure after connecting (reset mid-body, protocol error).
    #[error("engine http error: {0}")]
    Http(String),
    /// The engine answered, but not with what was expected (e.g. non-2xx health).
    #[error("bad engine response: {0}")]
    BadResponse(String),
    #[error("invalid engine url: {0}")]
    InvalidUrl(String),
}

/// An engine's answer: status and content type as sent, body as chunks as they arrive.
/// Dropping `body` aborts the upstream request.
pub struct EngineResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: BoxStream<'static, Result<bytes::Bytes, EngineError>>,
}

impl std::fmt::Debug for EngineResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// Counts tokens the way a model does, for engines whose answers carry no usage (e.g.
/// llama.cpp-based servers that ignore `stream_options.include_usage`): the worker bills
/// what it counts instead of zero.
pub trait TokenCounter: Send + Sync + 'static {
    /// Prompt tokens of an OpenAI request body sent to `path`.
    fn count_prompt(&self, path: &str, body: &[u8]) -> Result<u64, String>;
    /// Tokens of generated text.
    fn count_text(&self, text: &str) -> u64;
}

/// An OpenAI-compatible inference backend.
#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Ok if the engine is up and serving.
    async fn health(&self) -> Result<(), EngineError>;
    /// Sends `body` to `path` (`/v1/chat/completions` or `/v1/completions`). Non-2xx statuses are
    /// returned as responses, not errors, so the caller can relay the engine's error body.
    async fn call(&self, path: &str, body: bytes::Bytes) -> Result<EngineResponse, EngineError>;
}
