//! The built-in engine on the real default model (SmolLM2-135M-Instruct): determinism,
//! stop sequences, max_tokens, cancellation, concurrency and exact usage.
//! Needs the model in the cache: `scripts/test.sh` fetches it (`cocoon model fetch`).

use std::time::Duration;

use bytes::Bytes;
use cocoon_engine::{Engine, EngineResponse, TokenCounter};
use cocoon_llama::{GgufTokenizer, LlamaConfig, LlamaEngine};
use futures::StreamExt;
use serde_json::{json, Value};

fn model_path() -> std::path::PathBuf {
    let path = cocoon_llama::fetch::default_model_path();
    assert!(
        path.is_file(),
        "the default model is not at {}; run `cargo run -p cocoon -- model fetch` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn engine(slots: u32, context: u32) -> LlamaEngine {
    let mut config = LlamaConfig::new(model_path());
    config.slots = slots;
    config.context_per_slot = context;
    LlamaEngine::load(&config).expect("engine loads")
}

async fn body_of(resp: EngineResponse) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = resp.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.expect("body chunk"));
    }
    out
}

async fn chat(engine: &LlamaEngine, request: Value) -> (u16, Value) {
    let resp = engine
        .call("/v1/chat/completions", Bytes::from(request.to_string()))
        .await
        .expect("call");
    let status = resp.status;
    (
        status,
        serde_json::from_slice(&body_of(resp).await).expect("json"),
    )
}

/// Streams a request; returns the concatenated text, the finish reason and the usage event.
async fn chat_stream(engine: &LlamaEngine, mut request: Value) -> (String, String, Value) {
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let resp = engine
        .call("/v1/chat/completions", Bytes::from(request.to_string()))
        .await
        .expect("call");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_type.as_deref(), Some("text/event-stream"));
    let body = String::from_utf8(body_of(resp).await).expect("utf-8");
    let (mut text, mut finish, mut usage) = (String::new(), String::new(), Value::Null);
    let mut done = false;
    for line in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            done = true;
            continue;
        }
        let event: Value = serde_json::from_str(line).expect("event json");
        if let Some(choice) = event["choices"].get(0) {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = f.to_string();
            }
        }
        if !event["usage"].is_null() {
            usage = event["usage"].clone();
        }
    }
    assert!(done, "stream ends with [DONE]: {body}");
    (text, finish, usage)
}

fn question(q: &str) -> Value {
    json!({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": q}],
           "temperature": 0, "max_tokens": 40})
}

#[tokio::test]
async fn greedy_answers_are_deterministic_and_real() {
    let engine = engine(2, 1024);
    let (status, first) = chat(&engine, question("what is the capital of france")).await;
    assert_eq!(status, 200, "{first}");
    let text = first["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("Paris"), "a real model knows this: {text:?}");
    let (_, second) = chat(&engine, question("what is the capital of france")).await;
    assert_eq!(
        second["choices"][0]["message"]["content"],
        first["choices"][0]["message"]["content"]
    );
    let usage = &first["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 5);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn streaming_matches_non_streaming_text_and_usage() {
    let engine = engine(2, 1024);
    let request = question("Name three colours.");
    let (_, whole) = chat(&engine, request.clone()).await;
    let (text, finish, usage) = chat_stream(&engine, request).await;
    assert_eq!(
        text,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(
        finish,
        whole["choices"][0]["finish_reason"].as_str().unwrap()
    );
    assert_eq!(usage, whole["usage"]);
    // The tokenizer a worker uses for engines without usage counts the same numbers.
    let counter = GgufTokenizer::open(&model_path()).unwrap();
    let body = question("Name three colours.").to_string();
    assert_eq!(
        counter
            .count_prompt("/v1/chat/completions", body.as_bytes())
            .unwrap(),
        usage["prompt_tokens"].as_u64().unwrap()
    );
    if finish == "length" {
        assert_eq!(
            counter.count_text(&text),
            usage["completion_tokens"].as_u64().unwrap()
        );
    }
}

#[tokio::test]
async fn max_tokens_is_honoured_exactly() {
    let engine = engine(1, 1024);
    for max in [1u64, 5, 17] {
        let mut request = question("Write a long story about a dragon.");
        request["max_tokens"] = json!(max);
        let (_, answer) = chat(&engine, request).await;
        assert_eq!(
            answer["usage"]["completion_tokens"].as_u64(),
            Some(max),
            "{answer}"
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "length");
    }
}

#[tokio::test]
async fn stop_sequences_cut_the_answer_before_them() {
    let engine = engine(1, 1024);
    let mut request = question("Write a long story about a dragon.");
    let (_, free) = chat(&engine, request.clone()).await;
    let text = free["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // A stop sequence taken from the middle of the greedy answer.
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(words.len() > 6, "{text:?}");
    let stop = format!(" {}", words[5]);
    let at = text.find(&stop).unwrap();
    request["stop"] = json!([stop]);
    let (_, stopped) = chat(&engine, request.clone()).await;
    assert_eq!(
        stopped["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
        &text[..at]
    );
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    let (streamed, finish, _) = chat_stream(&engine, request).await;
    assert_eq!(streamed, &text[..at]);
    assert_eq!(finish, "stop");
}

#[tokio::test]
async fn a_dropped_request_frees_its_slot() {
    let engine = engine(1, 2048);
    let mut long = question("Write a long story about a dragon.");
    long["max_tokens"] = json!(1500);
    long["stream"] = json!(true);
    let resp = engine
        .call("/v1/chat/completions", Bytes::from(long.to_string()))
        .await
        .unwrap();
    let mut body = resp.body;
    assert!(body.next().await.is_some(), "first token arrives");
    assert_eq!(engine.active(), 1);
    drop(body);
    // The only slot is free again long before 1500 tokens could have been generated.
    let (status, answer) = tokio::time::timeout(
        Duration::from_secs(20),
        chat(&engine, question("What is 2+2?")),
    )
    .await
    .expect("second request is served");
    assert_eq!(status, 200, "{answer}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while engine.active() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.active(), 0);
}

#[tokio::test]
async fn concurrent_requests_both_finish() {
    let engine = engine(2, 1024);
    let a = chat(&engine, question("what is the capital of france"));
    let b = chat(&engine, question("Name three colours."));
    let ((sa, ra), (sb, rb)) = tokio::join!(a, b);
    assert_eq!((sa, sb), (200, 200));
    // Batched decoding gives the same greedy answers as one at a time.
    let (_, alone) = chat(&engine, question("Name three colours.")).await;
    assert_eq!(
        rb["choices"][0]["message"]["content"],
        alone["choices"][0]["message"]["content"]
    );
    assert!(ra["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Paris"));
}

#[tokio::test]
async fn unsupported_and_oversized_requests_get_clear_400s() {
    let engine = engine(1, 64);
    let mut tools = question("hi");
    tools["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
    let (status, err) = chat(&engine, tools).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("tools"),
        "{err}"
    );
    let (status, err) = chat(&engine, question(&"many words ".repeat(100))).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context"),
        "{err}"
    );
    let resp = engine
        .call("/v1/embeddings", Bytes::from("{}"))
        .await
        .unwrap();
    assert_eq!(resp.status, 404);
}

#[tokio::test]
async fn completions_endpoint_works() {
    let engine = engine(1, 512);
    let resp = engine
        .call(
            "/v1/completions",
            Bytes::from(
                json!({"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0})
                    .to_string(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let v: Value = serde_json::from_slice(&body_of(resp).await).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty());
}

/// What the proxy does when a worker dies mid-answer: another engine gets the answer so far
/// as a final assistant message with `continue_final_message`, and goes on from there.
#[tokio::test]
async fn a_continued_greedy_answer_goes_on_from_its_prefix() {
    let engine = engine(1, 1024);
    let request = question("Name three colours.");
    let (_, whole) = chat(&engine, request.clone()).await;
    let text = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // Cut after the first few words (a word boundary is a token boundary for this text).
    let cut = text
        .match_indices(' ')
        .nth(3)
        .map_or(text.len() / 2, |(i, _)| i);
    let (prefix, rest) = text.split_at(cut);
    let mut continued = request.clone();
    continued["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "assistant", "content": prefix}));
    continued["continue_final_message"] = json!(true);
    continued["add_generation_prompt"] = json!(false);
    let (status, next) = chat(&engine, continued).await;
    assert_eq!(status, 200, "{next}");
    let more = next["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!more.is_empty());
    // Greedy decoding from the same tokens gives the same rest (up to the token budget).
    let common = more.len().min(rest.len()).min(20);
    assert_eq!(&more[..common], &rest[..common], "prefix {prefix:?}");
    assert!(
        next["usage"]["prompt_tokens"].as_u64().unwrap()
            > whole["usage"]["prompt_tokens"].as_u64().unwrap(),
        "the prefix is part of the prompt"
    );
}
