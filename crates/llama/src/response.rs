//! OpenAI-shaped answers (JSON and server-sent events) built from decode events.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::request::Endpoint;
use crate::scheduler::Finish;

/// What every chunk of one answer shares.
#[derive(Clone, Debug)]
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub endpoint: Endpoint,
}

impl Meta {
    pub fn new(endpoint: Endpoint, model: String) -> Self {
        let prefix = match endpoint {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completions => "cmpl",
        };
        Self {
            id: format!("{prefix}-{:032x}", rand::random::<u128>()),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model,
            endpoint,
        }
    }

    fn object(&self, streaming: bool) -> &'static str {
        match (self.endpoint, streaming) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completions, _) => "text_completion",
        }
    }

    fn choice(&self, text: Option<&str>, first: bool, finish: Option<Finish>) -> Value {
        let finish = finish.map(Finish::as_str);
        match self.endpoint {
            Endpoint::Chat => {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), "assistant".into());
                }
                if let Some(t) = text {
                    delta.insert("content".into(), t.into());
                }
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
            }
            Endpoint::Completions => {
                json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
            }
        }
    }

    /// One SSE event with a text delta and/or the finish reason.
    pub fn chunk(&self, text: Option<&str>, first: bool, finish: Option<Finish>) -> Bytes {
        sse(&json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [self.choice(text, first, finish)],
        }))
    }

    /// The final usage event (`stream_options.include_usage`).
    pub fn usage_chunk(&self, prompt: u32, completion: u32) -> Bytes {
        sse(&json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage(prompt, completion),
        }))
    }

    /// The whole non-streaming answer.
    pub fn full(&self, text: &str, finish: Finish, prompt: u32, completion: u32) -> Bytes {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": finish.as_str(),
            }),
            Endpoint::Completions => json!({
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": finish.as_str(),
            }),
        };
        Bytes::from(
            json!({
                "id": self.id,
                "object": self.object(false),
                "created": self.created,
                "model": self.model,
                "choices": [choice],
                "usage": usage(prompt, completion),
            })
            .to_string(),
        )
    }
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";

fn usage(prompt: u32, completion: u32) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": u64::from(prompt) + u64::from(completion),
    })
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// An OpenAI error body.
pub fn error_body(message: &str, kind: &str) -> Bytes {
    Bytes::from(
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            .to_string(),
    )
}
