//! Whole-network round trips through the OpenAI API: answers and exact usage.

mod common;

use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use serde_json::{json, Value};

fn engine() -> TestEngineConfig {
    TestEngineConfig {
        chunks: 6,
        chunk_size: 12,
        ..Default::default()
    }
}

/// Usage the test engine reports for `hello there cocoon` (3 words + 4 per message).
fn expected_usage() -> (u64, u64, u64, u64) {
    (7, 1, 6, 1)
}

fn usage_tuple(u: &Value) -> (u64, u64, u64, u64) {
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap(),
    )
}

#[tokio::test]
async fn non_streaming_chat_returns_answer_and_exact_usage() {
    let net = start_simple(1, engine()).await;
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        6 * 12
    );
    assert_eq!(usage_tuple(&body["usage"]), expected_usage());
}

#[tokio::test]
async fn streaming_chat_relays_chunks_usage_and_done() {
    let net = start_simple(1, engine()).await;
    let res = net.post("/v1/chat/completions", &net.chat_body(true)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = res.text().await.unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content.len(), 6 * 12);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage_tuple(usage), expected_usage());
}

#[tokio::test]
async fn streaming_and_non_streaming_are_priced_identically() {
    let net = start_simple(1, engine()).await;
    net.post("/v1/chat/completions", &net.chat_body(false))
        .await
        .bytes()
        .await
        .unwrap();
    let after_one = net
        .devnet
        .client
        .stats()
        .total_cost
        .load(std::sync::atomic::Ordering::Relaxed);
    net.post("/v1/chat/completions", &net.chat_body(true))
        .await
        .bytes()
        .await
        .unwrap();
    let after_two = net
        .devnet
        .client
        .stats()
        .total_cost
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(after_one > 0, "a request with usage costs something");
    assert_eq!(
        after_two,
        2 * after_one,
        "streamed request billed like the non-streamed one"
    );
}

#[tokio::test]
async fn completions_endpoint_and_max_tokens() {
    let net = start_simple(1, engine()).await;
    let body = json!({"model": net.devnet.model, "prompt": "say something", "max_tokens": 2});
    let res = net.post("/v1/completions", &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn models_lists_live_workers_and_coefficients() {
    let mut config = cocoon_devnet::DevnetConfig::for_tests(2, engine());
    config.coefficients = vec![900, 1500];
    let net = start(config).await;
    let v: Value = net
        .http
        .get(net.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let m = &v["data"][0];
    assert_eq!(m["id"], net.devnet.model);
    assert_eq!(m["workers"], 2);
    assert_eq!(m["min_coefficient"], 900);
    assert_eq!(m["max_coefficient"], 1500);
    let health = net.http.get(net.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for worker in &net.devnet.workers {
        let base = format!("http://{}", worker.http_addr.expect("worker http on"));
        let health = net
            .http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let stats: Value = net
            .http
            .get(format!("{base}/jsonstats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["role"], "worker");
        assert_eq!(stats["enabled"], true);
        assert_eq!(stats["stats"]["connected_proxies"], 1);
    }
}

#[tokio::test]
async fn two_workers_share_load() {
    let net = start_simple(2, engine()).await;
    let mut handles = Vec::new();
    for _ in 0..40 {
        let http = net.http.clone();
        let url = net.url("/v1/chat/completions");
        let body = net.chat_body(false);
        handles.push(tokio::spawn(async move {
            http.post(url).json(&body).send().await.unwrap().status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    let served: Vec<u64> = net
        .devnet
        .engines
        .iter()
        .map(|e| e.stats().requests_completed)
        .collect();
    assert_eq!(served.iter().sum::<u64>(), 40);
    assert!(
        served.iter().all(|&n| n >= 5),
        "both workers got a share: {served:?}"
    );
}

#[tokio::test]
async fn api_keys_gate_the_api_with_rate_limits_and_spend_caps() {
    let mut config = cocoon_devnet::DevnetConfig::for_tests(1, engine());
    config.api_keys = vec![
        cocoon_client::ApiKey {
            name: "limited".into(),
            secret: "sk-limited-0123456789".into(),
            spend_cap: None,
            requests_per_minute: Some(2),
        },
        cocoon_client::ApiKey {
            name: "capped".into(),
            secret: "sk-capped-0123456789".into(),
            spend_cap: Some(1),
            requests_per_minute: None,
        },
    ];
    let net = start(config).await;
    let call = |key: Option<&'static str>| {
        let mut req = net
            .http
            .post(net.url("/v1/chat/completions"))
            .header("X-Request-Id", "trace-42")
            .json(&net.chat_body(false));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    // No key, a wrong key: 401 with an OpenAI error body, request id echoed.
    let res = call(None).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "trace-42");
    assert_openai_error(&res.json().await.unwrap(), "invalid_api_key");
    assert_eq!(
        call(Some("sk-wrong-0123456789")).await.unwrap().status(),
        401
    );
    // Models need a key too.
    let res = net.http.get(net.url("/v1/models")).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // Two requests a minute, then 429 with Retry-After.
    for _ in 0..2 {
        let res = call(Some("sk-limited-0123456789")).await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    let res = call(Some("sk-limited-0123456789")).await.unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_openai_error(&res.json().await.unwrap(), "rate_limit_exceeded");

    // The capped key pays for one request, then is over its cap: 402 naming it.
    let res = call(Some("sk-capped-0123456789")).await.unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    let res = call(Some("sk-capped-0123456789")).await.unwrap();
    assert_eq!(res.status(), 402);
    let body: Value = res.json().await.unwrap();
    let msg = assert_openai_error(&body, "spend_cap_reached");
    assert!(msg.contains("capped") && msg.contains("spend cap"), "{msg}");
}
