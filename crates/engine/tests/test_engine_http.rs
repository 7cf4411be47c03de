//! The test engine served on a real socket, driven through `HttpEngine`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cocoon_engine::test_engine::{TestEngine, TestEngineConfig};
use cocoon_engine::{Engine, EngineError, EngineResponse, HttpEngine, Usage, UsageScanner};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

struct Harness {
    engine: TestEngine,
    client: HttpEngine,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(config: TestEngineConfig) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let engine = TestEngine::new(config);
    let shutdown = CancellationToken::new();
    tokio::spawn(engine.clone().serve(listener, shutdown.clone()));
    let client = HttpEngine::new(&format!("http://{addr}/v1"), Some("k".into())).unwrap();
    Harness {
        engine,
        client,
        addr,
        shutdown,
    }
}

async fn collect(resp: EngineResponse) -> Vec<u8> {
    let mut body = resp.body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn post(h: &Harness, path: &str, body: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = h
        .client
        .call(path, Bytes::from(body.to_owned()))
        .await
        .unwrap();
    let (status, ct) = (resp.status, resp.content_type.clone());
    (status, ct, collect(resp).await)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

const CHAT: &str = r#"{"model":"test-model","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there my friend"}]}"#;

#[tokio::test]
async fn health_and_failing_switch() {
    let h = start(TestEngineConfig::default()).await;
    h.client.health().await.unwrap();
    h.engine.set_failing(true);
    assert!(matches!(
        h.client.health().await,
        Err(EngineError::BadResponse(_))
    ));
    let (status, _, body) = post(&h, "/v1/chat/completions", CHAT).await;
    assert_eq!(status, 500);
    assert!(json(&body)["error"]["message"].is_string());
    let health = reqwest::get(format!("http://{}/health", h.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    h.engine.set_failing(false);
    h.client.health().await.unwrap();
}

#[tokio::test]
async fn unreachable_engine() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = HttpEngine::new(&format!("http://{addr}/v1"), None).unwrap();
    assert!(matches!(
        client.health().await,
        Err(EngineError::Unreachable(_))
    ));
}

#[tokio::test]
async fn non_streaming_chat_is_deterministic() {
    let h = start(TestEngineConfig::default()).await;
    let (status, ct, a) = post(&h, "/v1/chat/completions", CHAT).await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("application/json"));
    let (_, _, b) = post(&h, "/v1/chat/completions", CHAT).await;
    assert_eq!(a, b);

    let v = json(&a);
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        8 * 16
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // 6 words + 4 per message × 2 = 14.
    let want = Usage {
        prompt_tokens: 14,
        cached_tokens: 3,
        completion_tokens: 8,
        reasoning_tokens: 2,
    };
    let mut scanner = UsageScanner::new(false);
    scanner.feed(&a);
    assert_eq!(scanner.finish(), Some(want));
    assert_eq!(v["usage"]["total_tokens"], 22);

    let stats = h.engine.stats();
    assert_eq!((stats.requests_started, stats.requests_completed), (2, 2));
    assert_eq!(stats.streams_cancelled, 0);
}

#[tokio::test]
async fn streaming_chat_with_usage() {
    let h = start(TestEngineConfig::default()).await;
    let req = r#"{"model":"test-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three four five six seven"}]}"#;
    let (status, ct, a) = post(&h, "/v1/chat/completions", req).await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("text/event-stream"));
    let (_, _, b) = post(&h, "/v1/chat/completions", req).await;
    assert_eq!(a, b, "same request must give identical bytes");

    let text = String::from_utf8(a.clone()).unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    // role + 8 content + finish + usage + [DONE]
    assert_eq!(events.len(), 12);
    assert_eq!(events[11], "data: [DONE]");
    let parsed: Vec<serde_json::Value> = events[..11]
        .iter()
        .map(|e| json(e.strip_prefix("data: ").unwrap().as_bytes()))
        .collect();
    assert_eq!(parsed[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = parsed[1..9]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content.len(), 128);
    assert_eq!(parsed[9]["choices"][0]["finish_reason"], "stop");
    assert!(parsed[..10].iter().all(|c| c["usage"].is_null()));
    assert_eq!(parsed[10]["choices"].as_array().unwrap().len(), 0);

    // The non-streaming answer to the same prompt carries the same text.
    let plain = req.replace(r#""stream":true,"#, "");
    let (_, _, full) = post(&h, "/v1/chat/completions", &plain).await;
    let full = json(&full);
    assert_eq!(
        full["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        128
    );

    let mut scanner = UsageScanner::new(true);
    for piece in a.chunks(7) {
        scanner.feed(piece);
    }
    let want = Usage {
        prompt_tokens: 11,
        cached_tokens: 2,
        completion_tokens: 8,
        reasoning_tokens: 2,
    };
    assert_eq!(scanner.finish(), Some(want));
}

#[tokio::test]
async fn streaming_without_include_usage_has_no_usage() {
    let h = start(TestEngineConfig::default()).await;
    let req = r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (_, _, body) = post(&h, "/v1/chat/completions", req).await;
    assert!(!String::from_utf8_lossy(&body).contains("usage"));
    let mut scanner = UsageScanner::new(true);
    scanner.feed(&body);
    assert_eq!(scanner.finish(), None);
}

#[tokio::test]
async fn completions_and_max_tokens() {
    let h = start(TestEngineConfig::default()).await;
    let req = r#"{"model":"test-model","prompt":"say something nice","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}"#;
    let (status, _, body) = post(&h, "/v1/completions", req).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.clone()).unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    // 3 content + finish + usage + [DONE]
    assert_eq!(events.len(), 6);
    let finish = json(events[3].strip_prefix("data: ").unwrap().as_bytes());
    assert_eq!(finish["object"], "text_completion");
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let mut scanner = UsageScanner::new(true);
    scanner.feed(&body);
    let usage = scanner.finish().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (4, 3));

    let req = r#"{"prompt":["a b","c"],"max_completion_tokens":5}"#;
    let (_, _, body) = post(&h, "/v1/completions", req).await;
    let v = json(&body);
    assert_eq!(v["choices"][0]["text"].as_str().unwrap().len(), 5 * 16);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 4);
}

#[tokio::test]
async fn request_errors() {
    let h = start(TestEngineConfig::default()).await;
    let cases = [
        (
            "/v1/chat/completions",
            r#"{"model":"nope","messages":[]}"#,
            404,
        ),
        ("/v1/chat/completions", "{not json", 400),
        ("/v1/chat/completions", r#"{"model":"test-model"}"#, 400),
        ("/v1/completions", r#"{"model":"test-model"}"#, 400),
    ];
    for (path, body, want) in cases {
        let (status, ct, resp) = post(&h, path, body).await;
        assert_eq!(status, want, "{body}");
        assert_eq!(ct.as_deref(), Some("application/json"));
        let v = json(&resp);
        assert_eq!(v["error"]["type"], "invalid_request_error");
        if want == 404 {
            assert_eq!(v["error"]["code"], "model_not_found");
        }
    }
    assert_eq!(h.engine.stats().requests_started, 0);
    assert!(matches!(
        h.client.call("/chat/completions", Bytes::new()).await,
        Err(EngineError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn dropping_body_cancels_engine_stream() {
    let h = start(TestEngineConfig {
        chunk_delay: Duration::from_millis(50),
        ..TestEngineConfig::default()
    })
    .await;
    let req = r#"{"stream":true,"messages":[{"role":"user","content":"go"}]}"#;
    let resp = h
        .client
        .call("/v1/chat/completions", Bytes::from_static(req.as_bytes()))
        .await
        .unwrap();
    let mut body = resp.body;
    // Read until at least one content chunk (after the role chunk) has arrived.
    let mut seen = Vec::new();
    while seen.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        seen.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    assert_eq!(h.engine.stats().streams_cancelled, 0);
    drop(body);

    let deadline = Instant::now() + Duration::from_secs(3);
    while h.engine.stats().streams_cancelled == 0 {
        assert!(
            Instant::now() < deadline,
            "cancellation did not reach the engine"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = h.engine.stats();
    assert_eq!(stats.requests_started, 1);
    assert_eq!(stats.requests_completed, 0);
}

#[tokio::test]
async fn models_list() {
    let h = start(TestEngineConfig {
        models: vec!["a".into(), "b".into()],
        ..TestEngineConfig::default()
    })
    .await;
    let resp = reqwest::get(format!("http://{}/v1/models", h.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = json(&resp.bytes().await.unwrap());
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][1]["id"], "b");
    assert_eq!(v["data"][0]["owned_by"], "cocoon-test");
}

#[tokio::test]
async fn abandoning_non_streaming_request_counts_as_cancelled() {
    let h = start(TestEngineConfig {
        chunk_delay: Duration::from_millis(100),
        ..TestEngineConfig::default()
    })
    .await;
    let call = h
        .client
        .call("/v1/chat/completions", Bytes::from_static(CHAT.as_bytes()));
    assert!(tokio::time::timeout(Duration::from_millis(200), call)
        .await
        .is_err());
    let deadline = Instant::now() + Duration::from_secs(3);
    while h.engine.stats().streams_cancelled == 0 {
        assert!(
            Instant::now() < deadline,
            "engine did not notice the client leaving"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.engine.stats().requests_completed, 0);
}
