//! Mid-stream failover (DESIGN §4 failure paths, issue 6): when a worker fails after a
//! streamed answer has begun, another worker continues it from what the app already has.
//!
//! [`Delivered`] sits between a worker's SSE bytes and the app. It forwards whole events
//! only, so a worker that dies in the middle of an event never leaves half an event in the
//! app's stream, and it keeps a copy of the events the app has. Nothing is parsed on the way:
//! only when a worker fails are the kept events read for the answer text so far and the
//! number of content events the failed worker delivered (one token each: OpenAI-compatible
//! engines stream token by token; that is what the proxy bills a worker that died without
//! reporting usage).
//!
//! [`continue_body`] turns the app's request into one that makes the next worker go on from
//! that text. Chat: the text becomes a final assistant message and the request asks for
//! `continue_final_message` (vLLM's parameter; the built-in engine and the test engine
//! understand it too) with `add_generation_prompt: false`. Completions: the text is
//! appended to the prompt, which is exactly how a completion continues.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Longest incomplete event held back; a longer one is passed on as it comes, and the answer
/// can no longer be continued (its events cannot be told apart).
const MAX_PENDING: usize = 4 << 20;
/// Most event bytes kept for a continuation (some 50,000 tokens of SSE); past it the answer
/// runs to its end or fails.
const MAX_KEPT: usize = 8 << 20;

/// What of a streamed answer has gone to the app.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    /// An incomplete event at the end of the last chunk.
    pending: BytesMut,
    /// The events the app has, from every worker of this answer (while under [`MAX_KEPT`]).
    kept: Vec<u8>,
    /// Where the current worker's events begin in `kept`.
    current_from: usize,
    /// Events forwarded from the current worker (its bill when `kept` overflowed).
    current_events: u64,
    /// `kept` overflowed, or an event was too long to frame: no continuation.
    overflow: bool,
    /// After a failover: the continuing worker's own usage event is dropped, because the
    /// proxy reports the usage of the whole answer at its end.
    drop_usage_events: bool,
}

/// The parts of an OpenAI stream event that matter for continuing it.
#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

/// What a failed worker left for the next one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Handover {
    /// The answer text the app has so far (from every worker).
    pub text: String,
    /// Content events of the whole answer so far.
    pub total_tokens: u64,
}

/// What the kept events say.
#[derive(Debug, Default)]
struct Reading {
    text: String,
    tokens: u64,
    /// Anything a continuation could not reproduce: several choices, tool calls, a finish
    /// reason or `[DONE]` (the answer was complete), an event that is not JSON.
    uncontinuable: bool,
}

impl Delivered {
    /// Takes the next chunk of the current worker's answer; returns what may go to the app
    /// now (whole events only; possibly empty).
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        // The pending part holds no terminator, so one can start at most two bytes back.
        let from = self.pending.len().saturating_sub(2);
        self.pending.extend_from_slice(chunk);
        let end = match complete_events_end(&self.pending[from..]) {
            0 if self.pending.len() > MAX_PENDING => {
                self.overflow = true;
                return self.pending.split().freeze();
            }
            0 => return Bytes::new(),
            n => from + n,
        };
        let complete = self.pending.split_to(end).freeze();
        self.forward(complete)
    }

    /// The end of the current worker's answer: whatever is left goes to the app as it is.
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split().freeze();
        if rest.is_empty() {
            return rest;
        }
        self.forward(rest)
    }

    /// Content events the current worker delivered: its bill when it failed without
    /// reporting usage.
    pub fn current_tokens(&self) -> u64 {
        if self.overflow {
            // The events are gone; all but the opening role event carried a token at most.
            return self.current_events.saturating_sub(1);
        }
        read(&self.kept[self.current_from..]).tokens
    }

    /// The current worker failed: hands over what the app has, unless the answer cannot be
    /// continued. Whatever the worker sent of an unfinished event is dropped (never shown).
    pub fn hand_over(&mut self) -> Option<Handover> {
        self.pending.clear();
        if self.overflow {
            return None;
        }
        let whole = read(&self.kept);
        self.current_from = self.kept.len();
        self.current_events = 0;
        if whole.uncontinuable {
            return None;
        }
        self.drop_usage_events = true;
        Some(Handover {
            text: whole.text,
            total_tokens: whole.tokens,
        })
    }

    /// Passes whole events on (less a continuing worker's usage events) and keeps a copy.
    fn forward(&mut self, complete: Bytes) -> Bytes {
        let out = if self.drop_usage_events && contains(&complete, b"\"usage\"") {
            without_usage_events(&complete)
        } else {
            complete
        };
        self.current_events += events(&out).count() as u64;
        if !self.overflow {
            if self.kept.len() + out.len() > MAX_KEPT {
                self.overflow = true;
                self.kept = Vec::new();
                self.current_from = 0;
            } else {
                self.kept.extend_from_slice(&out);
            }
        }
        out
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The events of `data` (each with its terminator; the last may be unterminated).
fn events(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut start = 0;
    event_ends(data)
        .chain(std::iter::once(data.len()))
        .filter_map(move |end| {
            if end <= start {
                return None;
            }
            let event = &data[start..end];
            start = end;
            Some(event)
        })
}

/// The final usage event of a stream: no choices, a `usage` object.
fn is_usage_event(event: &[u8]) -> bool {
    data_of(event)
        .and_then(|d| serde_json::from_slice::<Event>(d).ok())
        .is_some_and(|e| {
            e.choices.is_none_or(|c| c.is_empty()) && e.usage.is_some_and(|u| u.is_object())
        })
}

fn without_usage_events(data: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len());
    for event in events(data).filter(|e| !is_usage_event(e)) {
        out.extend_from_slice(event);
    }
    out.freeze()
}

/// Reads kept events: the answer text, the content events, whether it can be continued.
fn read(kept: &[u8]) -> Reading {
    let mut r = Reading::default();
    for event in events(kept) {
        let Some(data) = data_of(event) else {
            continue; // comments, blank keep-alives, other fields
        };
        if data == b"[DONE]" {
            r.uncontinuable = true;
            continue;
        }
        let Ok(parsed) = serde_json::from_slice::<Event>(data) else {
            r.uncontinuable = true;
            continue;
        };
        for choice in parsed.choices.unwrap_or_default() {
            let delta = choice.delta.unwrap_or(Delta {
                content: None,
                tool_calls: None,
            });
            if choice.index.unwrap_or(0) != 0
                || delta.tool_calls.is_some_and(|t| !t.is_null())
                || choice.finish_reason.is_some_and(|f| !f.is_null())
            {
                r.uncontinuable = true;
            }
            let content = delta.content.or(choice.text).unwrap_or_default();
            if !content.is_empty() {
                r.tokens += 1;
                r.text.push_str(&content);
            }
        }
    }
    r
}

/// The `data:` payload of one SSE event (its first data line), trimmed.
fn data_of(event: &[u8]) -> Option<&[u8]> {
    event.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let data = line.strip_prefix(b"data:")?;
        Some(data.trim_ascii())
    })
}

/// Byte offset just past the last blank line (SSE event terminator) in `data`; 0 if none.
fn complete_events_end(data: &[u8]) -> usize {
    event_ends(data).last().unwrap_or(0)
}

/// The end offsets of the terminated events in `data` (`\n\n` or `\r\n\r\n` terminators).
fn event_ends(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', data).filter_map(move |i| match (data.get(i + 1), data.get(i + 2)) {
        (Some(b'\n'), _) => Some(i + 2),
        (Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// The app's request body made to continue after `text`; `None` when the request cannot be
/// continued (not a JSON object, several choices, a prompt that is not one string).
pub(crate) fn continue_body(path: &str, body: &[u8], text: &str) -> Option<Vec<u8>> {
    if text.is_empty() {
        // Nothing reached the app yet: the request runs again as it was.
        return Some(body.to_vec());
    }
    // Bounded before parsing: a body of tiny values costs ~100× its size as `Value`s.
    cocoon_proto::check_json_values(body).ok()?;
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    if obj
        .get("n")
        .is_some_and(|n| !n.is_null() && n.as_u64() != Some(1))
    {
        return None;
    }
    match path {
        "/v1/chat/completions" => continue_chat(&mut obj, text)?,
        "/v1/completions" => match obj.get_mut("prompt") {
            Some(Value::String(prompt)) => prompt.push_str(text),
            _ => return None,
        },
        _ => return None,
    }
    serde_json::to_vec(&Value::Object(obj)).ok()
}

fn continue_chat(obj: &mut Map<String, Value>, text: &str) -> Option<()> {
    let already_continuing = obj.get("continue_final_message") == Some(&Value::Bool(true));
    let Some(Value::Array(messages)) = obj.get_mut("messages") else {
        return None;
    };
    let last_is_assistant = messages
        .last()
        .is_some_and(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    if already_continuing && last_is_assistant {
        // The app itself asked to continue its own assistant text: extend that text.
        match messages.last_mut().and_then(|m| m.get_mut("content")) {
            Some(Value::String(content)) => content.push_str(text),
            _ => return None,
        }
    } else {
        messages.push(serde_json::json!({"role": "assistant", "content": text}));
    }
    obj.insert("continue_final_message".into(), Value::Bool(true));
    obj.insert("add_generation_prompt".into(), Value::Bool(false));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(content: &str) -> String {
        format!(
            "data: {{\"id\":\"x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
            serde_json::to_string(content).unwrap()
        )
    }

    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n";

    fn stream(words: &[&str]) -> String {
        let mut s = String::from("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
        for w in words {
            s.push_str(&event(w));
        }
        s
    }

    #[test]
    fn forwards_whole_events_only_whatever_the_chunking() {
        let s = stream(&["Hel", "lo", " wo", "rld"]);
        let bytes = s.as_bytes();
        for split in 0..=bytes.len() {
            for split2 in split..=bytes.len() {
                let mut d = Delivered::default();
                let mut out = Vec::new();
                for part in [&bytes[..split], &bytes[split..split2], &bytes[split2..]] {
                    let got = d.push(part);
                    assert!(got.is_empty() || got.ends_with(b"\n\n"));
                    out.extend_from_slice(&got);
                }
                assert_eq!(out, bytes);
                assert_eq!(d.current_tokens(), 4);
                assert_eq!(d.hand_over().unwrap().text, "Hello world");
            }
        }
    }

    #[test]
    fn crlf_events_are_whole_events_too() {
        let s = stream(&["a", "b"]).replace("\n\n", "\r\n\r\n");
        let mut d = Delivered::default();
        let (first, second) = s.as_bytes().split_at(s.len() - 3);
        let mut out = d.push(first).to_vec();
        assert!(out.ends_with(b"\r\n\r\n"));
        out.extend_from_slice(&d.push(second));
        assert_eq!(out, s.as_bytes());
        assert_eq!(d.hand_over().unwrap().text, "ab");
    }

    #[test]
    fn a_failure_mid_event_hands_over_what_the_app_saw() {
        let s = stream(&["The", " cat"]);
        let half = event(" sat");
        let mut d = Delivered::default();
        let shown = d.push(format!("{s}{}", &half[..20]).as_bytes());
        assert_eq!(shown, s.as_bytes());
        assert_eq!(d.current_tokens(), 2);
        let h = d.hand_over().unwrap();
        assert_eq!(
            h,
            Handover {
                text: "The cat".into(),
                total_tokens: 2
            }
        );
        // The next worker's role event, content and usage: its usage event is dropped.
        let next = format!("{}{USAGE}data: [DONE]\n\n", stream(&[" sat"]));
        let out = d.push(next.as_bytes());
        assert_eq!(
            out,
            format!("{}data: [DONE]\n\n", stream(&[" sat"])).as_bytes()
        );
        assert_eq!(d.current_tokens(), 1);
        // The second worker dies too (after [DONE], so the answer is not continued again).
        assert_eq!(d.hand_over(), None);
    }

    #[test]
    fn finished_or_multi_choice_answers_are_not_continued() {
        let finish =
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        let other = "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n";
        let tools = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{}]}}]}\n\n";
        for tail in [finish, other, tools, "data: [DONE]\n\n", "data: {oops\n\n"] {
            let mut d = Delivered::default();
            d.push(format!("{}{tail}", stream(&["a"])).as_bytes());
            assert_eq!(d.hand_over(), None, "{tail}");
        }
        // Before a failover, usage events pass.
        let mut d = Delivered::default();
        assert_eq!(d.push(USAGE.as_bytes()), USAGE.as_bytes());
    }

    #[test]
    fn an_overlong_event_passes_but_ends_continuation() {
        let mut d = Delivered::default();
        let big = vec![b'x'; MAX_PENDING + 1];
        assert_eq!(d.push(&big).len(), big.len());
        assert!(d.hand_over().is_none());
        // So does an answer too long to keep; its failed worker is billed by event count.
        let mut d = Delivered::default();
        let event = event(&"y".repeat(1000));
        for _ in 0..=MAX_KEPT / event.len() {
            d.push(event.as_bytes());
        }
        assert_eq!(d.current_tokens(), (MAX_KEPT / event.len()) as u64);
        assert!(d.hand_over().is_none());
    }

    #[test]
    fn chat_continues_with_a_final_assistant_message() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let out: Value =
            serde_json::from_slice(&continue_body("/v1/chat/completions", body, "Hello").unwrap())
                .unwrap();
        assert_eq!(
            out["messages"][1],
            serde_json::json!({"role":"assistant","content":"Hello"})
        );
        assert_eq!(out["continue_final_message"], true);
        assert_eq!(out["add_generation_prompt"], false);
        assert_eq!(out["stream"], true);
        // Continuing twice extends the same message.
        let again: Value = serde_json::from_slice(
            &continue_body(
                "/v1/chat/completions",
                &serde_json::to_vec(&out).unwrap(),
                " there",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(again["messages"].as_array().unwrap().len(), 2);
        assert_eq!(again["messages"][1]["content"], "Hello there");
        // Nothing delivered yet: the same request again.
        assert_eq!(
            continue_body("/v1/chat/completions", body, "").unwrap(),
            body
        );
    }

    #[test]
    fn completions_continue_the_prompt() {
        let out: Value = serde_json::from_slice(
            &continue_body(
                "/v1/completions",
                br#"{"prompt":"Once upon","n":1}"#,
                " a time",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["prompt"], "Once upon a time");
        for body in [
            &br#"{"prompt":["a","b"]}"#[..],
            br#"{"prompt":"a","n":2}"#,
            br#"[1]"#,
            br#"{"messages":"x"}"#,
        ] {
            let path = if body.starts_with(br#"{"m"#) {
                "/v1/chat/completions"
            } else {
                "/v1/completions"
            };
            assert_eq!(continue_body(path, body, "x"), None);
        }
    }

    #[test]
    fn a_body_of_too_many_values_is_not_parsed_to_continue_it() {
        let dense = format!(
            r#"{{"model":"m","prompt":[{}0]}}"#,
            "[0],".repeat(cocoon_proto::MAX_JSON_VALUES)
        );
        assert_eq!(
            continue_body("/v1/completions", dense.as_bytes(), "x"),
            None
        );
    }
}
