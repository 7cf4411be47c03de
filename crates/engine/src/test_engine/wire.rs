//! OpenAI wire shapes rendered by the test engine. Structs (not `json!`) keep field order fixed
//! regardless of serde_json features, so responses are byte-identical across runs.

use bytes::Bytes;
use serde::Serialize;

use super::gen::{Kind, Plan};
use crate::Usage;

/// OpenAI's `created` is a timestamp; a constant keeps output a pure function of the request.
const CREATED: u64 = 0;

#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        WireUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
            prompt_tokens_details: PromptDetails {
                cached_tokens: u.cached_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
        }
    }
}

/// Top-level object shared by all four response kinds.
#[derive(Serialize)]
struct Envelope<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<C>,
    /// Absent, `null` (`Some(None)`, streaming with include_usage) or the usage object.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<WireUsage>>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Delta<'a>>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    index: u32,
    text: &'a str,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

fn to_json<T: Serialize>(prefix: &[u8], v: &T, suffix: &[u8]) -> Bytes {
    let mut out = prefix.to_vec();
    // Serializing these plain structs into a Vec cannot fail; fall back to `{}` rather than panic.
    if serde_json::to_writer(&mut out, v).is_err() {
        out.truncate(prefix.len());
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(suffix);
    Bytes::from(out)
}

/// The complete non-streaming JSON response.
pub(super) fn full_response(kind: Kind, plan: &Plan) -> Bytes {
    let text = plan.texts.concat();
    let finish_reason = Some(plan.finish_reason);
    let usage = Some(Some(WireUsage::from(&plan.usage)));
    match kind {
        Kind::Chat => {
            let choice = ChatChoice {
                index: 0,
                message: Some(Message {
                    role: "assistant",
                    content: &text,
                }),
                delta: None,
                logprobs: (),
                finish_reason,
            };
            to_json(b"", &env(plan, "chat.completion", vec![choice], usage), b"")
        }
        Kind::Completion => {
            let choice = TextChoice {
                index: 0,
                text: &text,
                logprobs: (),
                finish_reason,
            };
            to_json(b"", &env(plan, "text_completion", vec![choice], usage), b"")
        }
    }
}

/// One SSE event to send, and whether `chunk_delay` is slept before it (content chunks only).
pub(super) struct Event {
    pub delay_before: bool,
    pub bytes: Bytes,
}

/// All SSE events of a streaming response, `[DONE]` included.
pub(super) fn stream_events(kind: Kind, plan: &Plan) -> Vec<Event> {
    let plain = |bytes| Event {
        delay_before: false,
        bytes,
    };
    let mut out = Vec::with_capacity(plan.texts.len() + 4);
    if kind == Kind::Chat {
        out.push(plain(chat_chunk(plan, Some("assistant"), Some(""), None)));
    }
    for t in &plan.texts {
        let bytes = match kind {
            Kind::Chat => chat_chunk(plan, None, Some(t), None),
            Kind::Completion => text_chunk(plan, t, None),
        };
        out.push(Event {
            delay_before: true,
            bytes,
        });
    }
    let finish = Some(plan.finish_reason);
    out.push(plain(match kind {
        Kind::Chat => chat_chunk(plan, None, None, finish),
        Kind::Completion => text_chunk(plan, "", finish),
    }));
    if plan.include_usage {
        let object = match kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Completion => "text_completion",
        };
        let usage = Some(Some(WireUsage::from(&plan.usage)));
        let envelope = env(plan, object, Vec::<TextChoice>::new(), usage);
        out.push(plain(to_json(b"data: ", &envelope, b"\n\n")));
    }
    out.push(plain(Bytes::from_static(b"data: [DONE]\n\n")));
    out
}

/// OpenAI sends `"usage":null` on every ordinary chunk only when usage was asked for.
fn null_usage(plan: &Plan) -> Option<Option<WireUsage>> {
    plan.include_usage.then_some(None)
}

fn chat_chunk(
    plan: &Plan,
    role: Option<&'static str>,
    content: Option<&str>,
    finish_reason: Option<&str>,
) -> Bytes {
    let choice = ChatChoice {
        index: 0,
        message: None,
        delta: Some(Delta { role, content }),
        logprobs: (),
        finish_reason,
    };
    let envelope = env(
        plan,
        "chat.completion.chunk",
        vec![choice],
        null_usage(plan),
    );
    to_json(b"data: ", &envelope, b"\n\n")
}

fn text_chunk(plan: &Plan, text: &str, finish_reason: Option<&str>) -> Bytes {
    let choice = TextChoice {
        index: 0,
        text,
        logprobs: (),
        finish_reason,
    };
    let envelope = env(plan, "text_completion", vec![choice], null_usage(plan));
    to_json(b"data: ", &envelope, b"\n\n")
}

fn env<'a, C>(
    plan: &'a Plan,
    object: &'static str,
    choices: Vec<C>,
    usage: Option<Option<WireUsage>>,
) -> Envelope<'a, C> {
    Envelope {
        id: &plan.id,
        object,
        created: CREATED,
        model: &plan.model,
        choices,
        usage,
    }
}
