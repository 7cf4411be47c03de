//! Request parsing and deterministic generation: everything here is a pure function of the
//! request body bytes and the engine config.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::TestEngineConfig;
use crate::Usage;

/// Which OpenAI endpoint a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Chat,
    Completion,
}

/// Small vocabulary of plain ASCII words, so generated text never needs JSON escaping.
const VOCAB: [&str; 32] = [
    "alpha", "bravo", "cedar", "delta", "ember", "fjord", "gamma", "harbor", "iris", "jade",
    "kelp", "lumen", "maple", "nova", "onyx", "pearl", "quartz", "river", "sierra", "tundra",
    "umber", "vapor", "willow", "xenon", "yarrow", "zephyr", "amber", "basil", "coral", "dune",
    "echo", "flint",
];

#[derive(Deserialize)]
struct RawRequest {
    model: Option<String>,
    messages: Option<Vec<RawMessage>>,
    prompt: Option<Value>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    stream: Option<bool>,
    stream_options: Option<RawStreamOptions>,
    /// vLLM's parameter: go on with the final (assistant) message instead of answering it.
    continue_final_message: Option<bool>,
}

#[derive(Deserialize)]
struct RawMessage {
    role: Option<String>,
    content: Option<Value>,
}

#[derive(Deserialize)]
struct RawStreamOptions {
    include_usage: Option<bool>,
}

/// Everything needed to render the response, computed up front.
#[derive(Debug)]
pub(super) struct Plan {
    pub id: String,
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    /// One entry per output chunk, each exactly `chunk_size` bytes.
    pub texts: Vec<String>,
    pub finish_reason: &'static str,
    pub usage: Usage,
}

#[derive(Debug)]
pub(super) enum PlanError {
    BadJson(String),
    Missing(&'static str),
    UnknownModel(String),
}

pub(super) fn plan(kind: Kind, body: &[u8], config: &TestEngineConfig) -> Result<Plan, PlanError> {
    let req: RawRequest =
        serde_json::from_slice(body).map_err(|e| PlanError::BadJson(e.to_string()))?;

    // Like vLLM, a missing model means the (first) served one.
    let model = match req.model {
        Some(m) if config.models.contains(&m) => m,
        Some(m) => return Err(PlanError::UnknownModel(m)),
        None => config
            .models
            .first()
            .cloned()
            .ok_or(PlanError::Missing("model"))?,
    };

    // The answer is a function of the model and the conversation (not of other fields), so
    // the same conversation always gets the same answer, and a continued one its rest.
    let mut seed_hash = Sha256::new();
    seed_hash.update(model.as_bytes());
    let mut continued = "";
    let prompt_tokens = match kind {
        Kind::Chat => {
            let messages = req
                .messages
                .as_deref()
                .filter(|m| !m.is_empty())
                .ok_or(PlanError::Missing("messages"))?;
            let words: u64 = messages
                .iter()
                .map(|m| m.content.as_ref().map_or(0, count_words))
                .sum();
            let mut answered = messages;
            if let (Some(true), Some((last, before))) =
                (req.continue_final_message, messages.split_last())
            {
                if let (Some("assistant"), Some(Value::String(text))) =
                    (last.role.as_deref(), &last.content)
                {
                    continued = text;
                    answered = before;
                }
            }
            for m in answered {
                seed_hash.update(m.role.as_deref().unwrap_or("").as_bytes());
                seed_hash.update([0]);
                seed_hash.update(m.content.as_ref().map(Value::to_string).unwrap_or_default());
                seed_hash.update([0]);
            }
            words.saturating_add(4 * messages.len() as u64)
        }
        Kind::Completion => match &req.prompt {
            None | Some(Value::Null) => return Err(PlanError::Missing("prompt")),
            Some(p) => {
                seed_hash.update(p.to_string());
                count_words(p).saturating_add(1)
            }
        },
    };
    let seed: [u8; 32] = seed_hash.finalize().into();

    // One continuous word stream of `chunks` chunks, so the concatenation reads as words; a
    // continuation starts where the continued text ends, still on the same chunk grid.
    let (size, full) = (config.chunk_size, config.chunks as usize);
    let total = size.saturating_mul(full);
    let skip = continued.len().min(total);
    let first_end = match size {
        0 => 0,
        _ => skip.div_ceil(size).saturating_mul(size).min(total),
    };
    // Chunks left: a partial one up to the grid, then whole ones.
    let left = match size {
        0 => full,
        _ => usize::from(first_end > skip) + (total - first_end) / size,
    };
    let cap = [req.max_tokens, req.max_completion_tokens]
        .into_iter()
        .flatten()
        .min();
    let n = cap.map_or(left, |c| usize::try_from(c).unwrap_or(usize::MAX).min(left));
    let finish_reason = if n < left { "length" } else { "stop" };
    // Only the text that is sent is generated (a capped request of a huge answer is cheap).
    let texts: Vec<String> = match size {
        0 => vec![String::new(); n],
        _ => {
            let upto = first_end.saturating_add(n.saturating_mul(size)).min(total);
            let all = HashStream::new(seed).text(upto);
            let mut texts = Vec::with_capacity(n);
            if first_end > skip {
                texts.push(all[skip..first_end].to_owned());
            }
            texts.extend(all.as_bytes()[first_end..].chunks(size).map(ascii_string));
            texts.truncate(n);
            texts
        }
    };
    let n = n as u64;

    let body_hash: [u8; 32] = Sha256::digest(body).into();
    let prefix = match kind {
        Kind::Chat => "chatcmpl-",
        Kind::Completion => "cmpl-",
    };
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    for b in &body_hash[..8] {
        id.push_str(&format!("{b:02x}"));
    }

    Ok(Plan {
        id,
        model,
        stream: req.stream.unwrap_or(false),
        include_usage: req
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        texts,
        finish_reason,
        usage: Usage {
            prompt_tokens,
            cached_tokens: prompt_tokens / 4,
            completion_tokens: n,
            reasoning_tokens: n / 4,
        },
    })
}

/// Whitespace-separated words in a message content or prompt, whatever its OpenAI shape:
/// a string, an array of strings or `{"type":"text","text":..}` parts, or token-id arrays
/// (each id counts as one). serde_json's recursion limit bounds the depth.
fn count_words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Number(_) => 1,
        Value::Array(items) => items.iter().map(count_words).sum(),
        Value::Object(o) => o.get("text").map_or(0, count_words),
        Value::Null | Value::Bool(_) => 0,
    }
}

/// The text is pure ASCII, so byte slices of it are valid strings.
fn ascii_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// SHA-256 in counter mode over the request hash: a deterministic byte stream.
struct HashStream {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    pos: usize,
}

impl HashStream {
    fn new(seed: [u8; 32]) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 32],
            pos: 32,
        }
    }

    fn next_byte(&mut self) -> u8 {
        if self.pos == self.block.len() {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.block = h.finalize().into();
            self.counter += 1;
            self.pos = 0;
        }
        let b = self.block[self.pos];
        self.pos += 1;
        b
    }

    /// Space-terminated vocabulary words, truncated to exactly `size` bytes.
    fn text(&mut self, size: usize) -> String {
        let mut s = String::with_capacity(size + 8);
        while s.len() < size {
            s.push_str(VOCAB[usize::from(self.next_byte()) % VOCAB.len()]);
            s.push(' ');
        }
        // All ASCII, so any byte index is a char boundary.
        s.truncate(size);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TestEngineConfig {
        TestEngineConfig::default()
    }

    #[test]
    fn chat_usage_and_determinism() {
        let body = br#"{"model":"test-model","messages":[{"role":"user","content":"one two three"},
            {"role":"user","content":[{"type":"text","text":"four five"}]}]}"#;
        let a = plan(Kind::Chat, body, &cfg()).unwrap();
        let b = plan(Kind::Chat, body, &cfg()).unwrap();
        assert_eq!(a.texts, b.texts);
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), "chatcmpl-".len() + 16);
        assert_eq!(a.usage.prompt_tokens, 5 + 8);
        assert_eq!(a.usage.cached_tokens, 3);
        assert_eq!(a.usage.completion_tokens, 8);
        assert_eq!(a.usage.reasoning_tokens, 2);
        assert_eq!(a.finish_reason, "stop");
        assert!(a.texts.iter().all(|t| t.len() == 16 && t.is_ascii()));
    }

    #[test]
    fn a_continued_answer_goes_on_where_the_text_ends() {
        let cfg = TestEngineConfig {
            chunks: 6,
            chunk_size: 5,
            ..cfg()
        };
        let whole = plan(
            Kind::Chat,
            br#"{"messages":[{"role":"user","content":"go on"}],"stream":true}"#,
            &cfg,
        )
        .unwrap();
        let text = whole.texts.concat();
        assert_eq!(whole.texts.len(), 6);
        for cut in [0, 3, 5, 12, 29, 30] {
            let body = serde_json::json!({
                "messages": [{"role":"user","content":"go on"},
                             {"role":"assistant","content": &text[..cut]}],
                "continue_final_message": true, "add_generation_prompt": false,
                "max_tokens": 100,
            });
            let rest = plan(Kind::Chat, body.to_string().as_bytes(), &cfg).unwrap();
            assert_eq!(
                format!("{}{}", &text[..cut], rest.texts.concat()),
                text,
                "cut {cut}"
            );
            assert_eq!(rest.usage.completion_tokens, rest.texts.len() as u64);
            assert_eq!(rest.texts.len(), 6 - cut / 5, "cut {cut}");
        }
        // Other fields do not change the answer; the conversation does.
        let other = plan(
            Kind::Chat,
            br#"{"messages":[{"role":"user","content":"go on"}],"temperature":0.5}"#,
            &cfg,
        )
        .unwrap();
        assert_eq!(other.texts, whole.texts);
        assert_ne!(other.id, whole.id);
        let different = plan(
            Kind::Chat,
            br#"{"messages":[{"role":"user","content":"stop"}]}"#,
            &cfg,
        )
        .unwrap();
        assert_ne!(different.texts, whole.texts);
    }

    #[test]
    fn completion_caps_and_errors() {
        let p = plan(
            Kind::Completion,
            br#"{"prompt":"a b","max_tokens":3}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!((p.texts.len(), p.finish_reason), (3, "length"));
        assert_eq!(p.usage.prompt_tokens, 3);
        assert_eq!(p.model, "test-model");
        assert!(matches!(
            plan(Kind::Completion, b"{}", &cfg()),
            Err(PlanError::Missing("prompt"))
        ));
        assert!(matches!(
            plan(Kind::Chat, br#"{"messages":[]}"#, &cfg()),
            Err(PlanError::Missing("messages"))
        ));
        assert!(matches!(
            plan(Kind::Chat, b"{not json", &cfg()),
            Err(PlanError::BadJson(_))
        ));
        assert!(matches!(
            plan(Kind::Chat, br#"{"model":"x","messages":[{}]}"#, &cfg()),
            Err(PlanError::UnknownModel(_))
        ));
    }
}
