//! Token counting from engine responses.
//!
//! The scanner sits on the relay hot path and sees every body chunk, so it avoids JSON-parsing
//! anything that cannot carry a non-null `usage` object: a byte search for `"usage"` followed by
//! something other than `null` gates the (small, `usage`-only) serde parse.

use std::sync::LazyLock;

use memchr::memmem;
use serde::{Deserialize, Serialize};

/// Longest SSE line kept while waiting for its end; longer lines are dropped, not buffered,
/// so a misbehaving engine cannot make the relay grow without bound.
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// Largest non-streaming body buffered for the final parse; larger bodies yield no usage.
pub const MAX_BODY_BYTES: usize = 16 << 20;

static USAGE_KEY: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"usage\""));

/// Token counts of one request, in the four classes that are priced separately.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
}

/// Incremental extractor of the last non-null OpenAI `usage` object in a response body.
#[derive(Debug)]
pub struct UsageScanner {
    streaming: bool,
    /// Streaming: the current partial line. Non-streaming: the whole body so far.
    buf: Vec<u8>,
    /// Streaming: the rest of the current (overlong) line is being dropped.
    /// Non-streaming: the body exceeded [`MAX_BODY_BYTES`].
    skipping: bool,
    last: Option<Usage>,
    /// Also collect the answer text (for counting tokens when the engine reports no usage).
    collect_text: bool,
    text: String,
    /// Streaming: the `data: [DONE]` line has been seen.
    done: bool,
}

impl UsageScanner {
    pub fn new(streaming: bool) -> Self {
        Self {
            streaming,
            buf: Vec::new(),
            skipping: false,
            last: None,
            collect_text: false,
            text: String::new(),
            done: false,
        }
    }

    /// Whether a stream's closing `data: [DONE]` has been seen: the answer is complete,
    /// whatever the transport does afterwards.
    pub fn saw_done(&self) -> bool {
        self.done
    }

    /// A scanner that also collects the generated text (`choices[].delta.content`,
    /// `.message.content`, `.text`), at most [`MAX_BODY_BYTES`] of it.
    pub fn with_text(streaming: bool) -> Self {
        Self {
            collect_text: true,
            ..Self::new(streaming)
        }
    }

    /// Like [`finish`](Self::finish), also returning the collected answer text.
    pub fn finish_with_text(mut self) -> (Option<Usage>, String) {
        if !self.streaming && self.collect_text && !self.skipping {
            let body = std::mem::take(&mut self.buf);
            self.collect_from(&body);
            self.buf = body;
        }
        let text = std::mem::take(&mut self.text);
        (self.finish(), text)
    }

    fn collect_from(&mut self, json: &[u8]) {
        let Ok(envelope) = serde_json::from_slice::<TextEnvelope>(json) else {
            return;
        };
        for choice in envelope.choices.unwrap_or_default() {
            let parts = [
                choice.delta.and_then(|d| d.content),
                choice.message.and_then(|m| m.content),
                choice.text,
            ];
            for part in parts.into_iter().flatten() {
                if self.text.len() + part.len() <= MAX_BODY_BYTES {
                    self.text.push_str(&part);
                }
            }
        }
    }

    /// Feeds one body chunk; chunk boundaries may fall anywhere (mid-line, mid-UTF-8, mid-JSON).
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.streaming {
            self.feed_sse(chunk);
        } else if !self.skipping {
            if self.buf.len() + chunk.len() > MAX_BODY_BYTES {
                // Free the memory now rather than holding 16 MiB until finish.
                self.buf = Vec::new();
                self.skipping = true;
            } else {
                self.buf.extend_from_slice(chunk);
            }
        }
    }

    /// The last non-null usage seen, if any.
    pub fn finish(mut self) -> Option<Usage> {
        if self.streaming {
            // A stream cut without a final newline may still end in a complete `data:` line.
            if !self.skipping && !self.buf.is_empty() {
                let line = std::mem::take(&mut self.buf);
                self.scan_line(&line);
            }
            self.last
        } else if self.skipping {
            None
        } else {
            parse_usage(&self.buf)
        }
    }

    fn feed_sse(&mut self, mut chunk: &[u8]) {
        while let Some(i) = memchr::memchr(b'\n', chunk) {
            let head = &chunk[..i];
            chunk = &chunk[i + 1..];
            if self.skipping {
                self.skipping = false;
            } else if self.buf.is_empty() {
                // Common case: the whole line is inside this chunk, so no copy is needed.
                if head.len() <= MAX_LINE_BYTES {
                    self.scan_line(head);
                }
            } else if self.buf.len() + head.len() <= MAX_LINE_BYTES {
                self.buf.extend_from_slice(head);
                let line = std::mem::take(&mut self.buf);
                self.scan_line(&line);
                // Keep the allocation for the next split line.
                self.buf = line;
                self.buf.clear();
            } else {
                self.buf.clear();
            }
        }
        if chunk.is_empty() || self.skipping {
            return;
        }
        if self.buf.len() + chunk.len() > MAX_LINE_BYTES {
            self.buf = Vec::new();
            self.skipping = true;
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    fn scan_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // Other SSE fields (`event:`, `id:`, `: comment`) never carry usage.
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if trim_start(data) == b"[DONE]" {
            self.done = true;
            return;
        }
        if let Some(usage) = parse_usage(data) {
            self.last = Some(usage);
        }
        if self.collect_text {
            self.collect_from(trim_start(data));
        }
    }
}

/// Parses `{"usage": {...}, ...}` if the cheap pre-check says a non-null usage may be present.
fn parse_usage(json: &[u8]) -> Option<Usage> {
    if !has_non_null_usage(json) {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(json).ok()?;
    envelope.usage.map(Usage::from)
}

/// True if some `"usage"` key is followed by a value other than `null`. Inside JSON strings a
/// quote is always escaped, so `"usage"` bytes only occur as a key or as the string "usage";
/// false positives merely cost one parse.
fn has_non_null_usage(json: &[u8]) -> bool {
    USAGE_KEY.find_iter(json).any(|pos| {
        let rest = trim_start(&json[pos + USAGE_KEY.needle().len()..]);
        match rest.strip_prefix(b":") {
            Some(value) => !trim_start(value).starts_with(b"null"),
            None => false,
        }
    })
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// Only `usage` is deserialized; serde skips every other field without building values.
#[derive(Deserialize)]
struct Envelope {
    usage: Option<RawUsage>,
}

/// Only the answer text of a response or chunk.
#[derive(Deserialize)]
struct TextEnvelope {
    choices: Option<Vec<RawChoice>>,
}

#[derive(Deserialize)]
struct RawChoice {
    delta: Option<RawMessage>,
    message: Option<RawMessage>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<RawDetails>,
    completion_tokens_details: Option<RawDetails>,
}

#[derive(Deserialize)]
struct RawDetails {
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

impl From<RawUsage> for Usage {
    fn from(raw: RawUsage) -> Self {
        Usage {
            prompt_tokens: raw.prompt_tokens.unwrap_or(0),
            cached_tokens: raw
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            completion_tokens: raw.completion_tokens.unwrap_or(0),
            reasoning_tokens: raw
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests;
