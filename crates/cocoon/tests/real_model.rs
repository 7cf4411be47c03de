//! The whole network on a real model: the built-in llama.cpp engine serving the default
//! SmolLM2-135M-Instruct (what `cocoon dev` runs), and a worker refusing weights that do not
//! match its model id. Needs the model in the cache (`cocoon model fetch`; test.sh runs it).

mod common;

use cocoon_devnet::{DevnetConfig, EngineChoice};
use cocoon_engine::test_engine::TestEngineConfig;
use cocoon_engine::TokenCounter;
use common::*;
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

fn builtin(model_id: String) -> DevnetConfig {
    let mut config = DevnetConfig::for_tests(1, TestEngineConfig::default());
    let mut engine = cocoon_llama::LlamaConfig::new(model_path());
    engine.slots = 2;
    engine.context_per_slot = 1024;
    config.engine = EngineChoice::Builtin {
        model_id,
        config: engine,
    };
    config
}

const QUESTION: &str = "What is the capital of France?";

#[tokio::test]
async fn the_readme_question_gets_a_real_answer_with_exact_usage() {
    let net = start(builtin(cocoon_llama::fetch::default_model_id())).await;
    assert_eq!(net.devnet.model, "SmolLM2-135M-Instruct");
    let request = json!({"model": "SmolLM2-135M-Instruct",
                         "messages": [{"role": "user", "content": QUESTION}]});
    let res = net.post("/v1/chat/completions", &request).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.split_whitespace().count() >= 3, "{text:?}");
    // Prompt tokens are exactly what the model's own tokenizer makes of the templated chat.
    let tokenizer = cocoon_llama::GgufTokenizer::open(&model_path()).unwrap();
    let prompt = tokenizer
        .count_prompt("/v1/chat/completions", request.to_string().as_bytes())
        .unwrap();
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"].as_u64(), Some(prompt));
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!(completion > 0);
    assert!(usage["total_cost"].as_u64().unwrap() > 0, "paid: {usage}");

    // Streaming, greedy and bounded: the answer arrives in several events and usage counts
    // exactly the tokens generated.
    let mut stream = request.clone();
    stream["stream"] = json!(true);
    stream["temperature"] = json!(0);
    stream["max_tokens"] = json!(12);
    let res = net.post("/v1/chat/completions", &stream).await;
    assert_eq!(res.status(), 200);
    let events = sse_events(&res.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let content_events = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert!(content_events >= 3, "{events:?}");
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"].as_u64(), Some(prompt));
    assert_eq!(usage["usage"]["completion_tokens"].as_u64(), Some(12));

    // /v1/models lists the base name apps use.
    let models: Value = net
        .http
        .get(net.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models.to_string().contains("SmolLM2-135M-Instruct"),
        "{models}"
    );
}

#[tokio::test]
async fn weights_that_do_not_match_the_model_id_are_refused() {
    let wrong = "ab".repeat(32);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = cocoon_devnet::start(
        builtin(format!("SmolLM2-135M-Instruct@q4_1:{wrong}")),
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let err = match started {
        Ok(_) => panic!("a worker with mismatched weights must not start"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&wrong) && err.contains(cocoon_llama::fetch::DEFAULT_MODEL_SHA256),
        "names expected and actual hash: {err}"
    );
}
