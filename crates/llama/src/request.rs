//! OpenAI request bodies as the built-in engine understands them: what it supports is parsed
//! and range-checked; what it does not (tools, logprobs, n > 1, JSON schemas) is refused with a
//! clear 400 instead of being silently ignored.

use serde_json::{Map, Value};

/// At most this many stop sequences (OpenAI's limit).
pub const MAX_STOP_SEQUENCES: usize = 4;
/// Longest stop sequence accepted, in bytes.
pub const MAX_STOP_BYTES: usize = 256;
/// Sampling temperature when the request sets none. Lower than OpenAI's 1.0: small local
/// models ramble at 1.0, and an app that wants more randomness says so.
pub const DEFAULT_TEMPERATURE: f32 = 0.2;
pub const DEFAULT_TOP_P: f32 = 0.9;

/// Which OpenAI endpoint a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
}

impl Endpoint {
    pub fn from_path(path: &str) -> Option<Self> {
        match path {
            "/v1/chat/completions" => Some(Self::Chat),
            "/v1/completions" => Some(Self::Completions),
            _ => None,
        }
    }
}

/// One chat message with its content flattened to text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// What to generate from.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptInput {
    Chat(Vec<ChatMessage>),
    /// `continue_final_message` (vLLM's parameter, which the proxy uses to continue an answer
    /// another worker began): the answer goes on from the final assistant message's text.
    ChatContinued {
        messages: Vec<ChatMessage>,
        partial: String,
    },
    Text(String),
}

/// Sampling settings of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// 0 = greedy (deterministic).
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u32>,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
}

/// A parsed, validated generation request.
#[derive(Clone, Debug, PartialEq)]
pub struct GenRequest {
    pub endpoint: Endpoint,
    /// Echoed in answers.
    pub model: String,
    pub input: PromptInput,
    /// None = until the context ends or the model stops.
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    pub sampling: Sampling,
    pub stream: bool,
    pub include_usage: bool,
}

/// Why a request cannot be served; becomes a 400 with this message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

fn bad(msg: impl Into<String>) -> BadRequest {
    BadRequest(msg.into())
}

/// Parses a request body for `endpoint`.
pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<GenRequest, BadRequest> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad("body must be a JSON object"));
    };
    refuse_unsupported(&obj)?;
    let model = match obj.get("model") {
        Some(Value::String(m)) => m.clone(),
        None => String::new(),
        Some(_) => return Err(bad("`model` must be a string")),
    };
    let input = match endpoint {
        Endpoint::Chat => chat_input(&obj)?,
        Endpoint::Completions => PromptInput::Text(parse_prompt(obj.get("prompt"))?),
    };
    let max_tokens = match (obj.get("max_completion_tokens"), obj.get("max_tokens")) {
        (Some(v), _) if !v.is_null() => Some(uint(v, "max_completion_tokens")?),
        (_, Some(v)) if !v.is_null() => Some(uint(v, "max_tokens")?),
        _ => None,
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("`stream` must be a boolean")),
    };
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => matches!(o.get("include_usage"), Some(Value::Bool(true))),
        Some(_) => return Err(bad("`stream_options` must be an object")),
    };
    Ok(GenRequest {
        endpoint,
        model,
        input,
        max_tokens,
        stop: parse_stop(obj.get("stop"))?,
        sampling: Sampling {
            temperature: number(&obj, "temperature", 0.0, 2.0)?.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: match number(&obj, "top_p", 0.0, 1.0)? {
                Some(p) if p <= 0.0 => return Err(bad("`top_p` must be greater than 0")),
                Some(p) => p,
                None => DEFAULT_TOP_P,
            },
            seed: match obj.get("seed") {
                None | Some(Value::Null) => None,
                // Engines take a 32-bit seed; larger ones are folded so any i64 works.
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(s) => Some((s as u64 ^ ((s as u64) >> 32)) as u32),
                    None => return Err(bad("`seed` must be an integer")),
                },
                Some(_) => return Err(bad("`seed` must be an integer")),
            },
            frequency_penalty: number(&obj, "frequency_penalty", -2.0, 2.0)?.unwrap_or(0.0),
            presence_penalty: number(&obj, "presence_penalty", -2.0, 2.0)?.unwrap_or(0.0),
        },
        stream,
        include_usage,
    })
}

/// Only the prompt part of a request (for counting tokens of requests another engine served,
/// which may use options this engine refuses).
pub fn parse_input(endpoint: Endpoint, body: &[u8]) -> Result<PromptInput, BadRequest> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad("body must be a JSON object"));
    };
    match endpoint {
        Endpoint::Chat => chat_input(&obj),
        Endpoint::Completions => Ok(PromptInput::Text(parse_prompt(obj.get("prompt"))?)),
    }
}

/// The messages of a chat request; with `continue_final_message`, the final assistant
/// message is the start of the answer rather than a turn to answer.
fn chat_input(obj: &Map<String, Value>) -> Result<PromptInput, BadRequest> {
    let mut messages = parse_messages(obj.get("messages"))?;
    match obj.get("continue_final_message") {
        None | Some(Value::Null | Value::Bool(false)) => Ok(PromptInput::Chat(messages)),
        Some(Value::Bool(true)) => match messages.pop() {
            Some(last) if last.role == "assistant" => Ok(PromptInput::ChatContinued {
                messages,
                partial: last.content,
            }),
            _ => Err(bad(
                "`continue_final_message` needs a final message with role \"assistant\"",
            )),
        },
        Some(_) => Err(bad("`continue_final_message` must be a boolean")),
    }
}

/// Options this engine cannot honour. Silently ignoring them would give an app a wrong
/// answer it cannot detect (no tool call, no logprobs, free text instead of JSON).
fn refuse_unsupported(obj: &Map<String, Value>) -> Result<(), BadRequest> {
    let unsupported = |what: &str| {
        Err(bad(format!(
            "{what} is not supported by this model's engine (the built-in CPU engine); \
             use a worker with vLLM, SGLang or llama.cpp server for it"
        )))
    };
    if let Some(tools) = obj.get("tools") {
        if !matches!(tools, Value::Null) && tools.as_array().is_none_or(|t| !t.is_empty()) {
            return unsupported("`tools`");
        }
    }
    if let Some(choice) = obj.get("tool_choice") {
        if !matches!(choice, Value::Null) && choice.as_str() != Some("none") {
            return unsupported("`tool_choice`");
        }
    }
    if obj.get("functions").is_some_and(|f| !f.is_null()) {
        return unsupported("`functions`");
    }
    match obj.get("logprobs") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(_) => return unsupported("`logprobs`"),
    }
    if obj.get("top_logprobs").is_some_and(|v| !v.is_null()) {
        return unsupported("`top_logprobs`");
    }
    match obj.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(_) => return unsupported("`n` other than 1"),
    }
    match obj.get("best_of") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(_) => return unsupported("`best_of` other than 1"),
    }
    if obj.get("echo").is_some_and(|v| v.as_bool() == Some(true)) {
        return unsupported("`echo`");
    }
    if obj.get("suffix").is_some_and(|v| !v.is_null()) {
        return unsupported("`suffix`");
    }
    if let Some(format) = obj.get("response_format") {
        let kind = format.get("type").and_then(Value::as_str);
        if !matches!(format, Value::Null) && kind != Some("text") {
            return unsupported("`response_format` other than text");
        }
    }
    Ok(())
}

fn parse_messages(value: Option<&Value>) -> Result<Vec<ChatMessage>, BadRequest> {
    let Some(Value::Array(items)) = value else {
        return Err(bad("`messages` must be an array"));
    };
    if items.is_empty() {
        return Err(bad("`messages` must not be empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.get("role") {
                Some(Value::String(r)) => match r.as_str() {
                    "system" | "user" | "assistant" => r.clone(),
                    // OpenAI's newer name for the system role.
                    "developer" => "system".to_string(),
                    other => {
                        return Err(bad(format!(
                            "messages[{i}]: role {other:?} is not supported by this engine"
                        )))
                    }
                },
                _ => return Err(bad(format!("messages[{i}].role must be a string"))),
            };
            let content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(Value::Array(parts)) => text_parts(i, parts)?,
                Some(_) => {
                    return Err(bad(format!(
                        "messages[{i}].content must be a string or an array of parts"
                    )))
                }
            };
            Ok(ChatMessage { role, content })
        })
        .collect()
}

fn text_parts(i: usize, parts: &[Value]) -> Result<String, BadRequest> {
    let mut text = String::new();
    for part in parts {
        match (part.get("type").and_then(Value::as_str), part.get("text")) {
            (Some("text"), Some(Value::String(t))) => text.push_str(t),
            (Some(kind), _) if kind != "text" => {
                return Err(bad(format!(
                    "messages[{i}]: content parts of type {kind:?} are not supported by this \
                     engine (text only)"
                )))
            }
            _ => return Err(bad(format!("messages[{i}]: malformed content part"))),
        }
    }
    Ok(text)
}

fn parse_prompt(value: Option<&Value>) -> Result<String, BadRequest> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
            Value::String(s) => Ok(s.clone()),
            _ => Err(bad("`prompt` as token ids is not supported by this engine")),
        },
        Some(Value::Array(_)) => Err(bad(
            "`prompt` must be one string (batched prompts are not supported by this engine)",
        )),
        _ => Err(bad("`prompt` must be a string")),
    }
}

fn parse_stop(value: Option<&Value>) -> Result<Vec<String>, BadRequest> {
    let stops = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| match s {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad("`stop` entries must be strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("`stop` must be a string or an array of strings")),
    };
    if stops.len() > MAX_STOP_SEQUENCES {
        return Err(bad(format!(
            "`stop` takes at most {MAX_STOP_SEQUENCES} sequences"
        )));
    }
    if stops
        .iter()
        .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
    {
        return Err(bad(format!(
            "`stop` sequences must be 1 to {MAX_STOP_BYTES} bytes long"
        )));
    }
    Ok(stops)
}

fn uint(v: &Value, name: &str) -> Result<u32, BadRequest> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| bad(format!("`{name}` must be a non-negative integer")))
}

fn number(
    obj: &Map<String, Value>,
    name: &str,
    min: f32,
    max: f32,
) -> Result<Option<f32>, BadRequest> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (f64::from(min)..=f64::from(max)).contains(&x) => Ok(Some(x as f32)),
            _ => Err(bad(format!(
                "`{name}` must be a number from {min} to {max}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<GenRequest, BadRequest> {
        parse(Endpoint::Chat, body.as_bytes())
    }

    #[test]
    fn continue_final_message_takes_the_assistant_text_as_the_answer_start() {
        let r = chat(
            r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hel"}],
            "continue_final_message":true,"add_generation_prompt":false}"#,
        )
        .unwrap();
        assert_eq!(
            r.input,
            PromptInput::ChatContinued {
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: "hi".into()
                }],
                partial: "Hel".into()
            }
        );
        for body in [
            r#"{"messages":[{"role":"user","content":"hi"}],"continue_final_message":true}"#,
            r#"{"messages":[{"role":"user","content":"hi"}],"continue_final_message":1}"#,
        ] {
            assert!(chat(body).is_err(), "{body}");
        }
    }

    #[test]
    fn parses_a_full_chat_request() {
        let r = chat(
            r#"{"model":"m","messages":[{"role":"developer","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
            "max_tokens":7,"stop":"\n","temperature":0,"top_p":0.5,"seed":-1,"stream":true,
            "stream_options":{"include_usage":true},"n":1,"tools":[],"logprobs":false}"#,
        )
        .unwrap();
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!(r.stop, vec!["\n".to_string()]);
        assert_eq!(r.sampling.temperature, 0.0);
        assert!(r.stream && r.include_usage);
        assert!(r.sampling.seed.is_some());
        let PromptInput::Chat(m) = r.input else {
            panic!()
        };
        assert_eq!(m[0].role, "system");
        assert_eq!(m[1].content, "hi there");
    }

    #[test]
    fn max_completion_tokens_wins() {
        let r = chat(r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":9,"max_completion_tokens":3}"#)
            .unwrap();
        assert_eq!(r.max_tokens, Some(3));
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        for (field, body) in [
            (
                "tools",
                r#""tools":[{"type":"function","function":{"name":"f"}}]"#,
            ),
            ("tool_choice", r#""tool_choice":"auto""#),
            ("logprobs", r#""logprobs":true"#),
            ("`n`", r#""n":2"#),
            (
                "response_format",
                r#""response_format":{"type":"json_schema"}"#,
            ),
        ] {
            let err = chat(&format!(
                r#"{{"messages":[{{"role":"user","content":"x"}}],{body}}}"#
            ))
            .unwrap_err();
            assert!(err.0.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for body in [
            r#"[]"#,
            r#"{"messages":[]}"#,
            r#"{"messages":[{"role":"tool","content":"x"}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":3}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"top_p":0}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"stop":[""]}"#,
            r#"{"messages":[{"role":"user","content":"x"}],"seed":1.5}"#,
        ] {
            assert!(chat(body).is_err(), "{body}");
        }
        assert!(parse(Endpoint::Completions, br#"{"prompt":[1,2]}"#).is_err());
        assert!(parse(Endpoint::Completions, br#"{"prompt":["a","b"]}"#).is_err());
        let ok = parse(Endpoint::Completions, br#"{"prompt":["a"]}"#).unwrap();
        assert_eq!(ok.input, PromptInput::Text("a".into()));
    }
}
