//! Failure paths through the whole network (DESIGN §3, §4): clear, immediate OpenAI-shaped
//! errors, cancellation that reaches the engine, deadlines, and peers sending garbage.

mod common;

use cocoon_devnet::DevnetConfig;
use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// "Immediately" for an error that needs no engine work.
const PROMPT: Duration = Duration::from_secs(1);

fn engine() -> TestEngineConfig {
    TestEngineConfig {
        chunks: 4,
        chunk_size: 8,
        ..Default::default()
    }
}

fn slow_engine(chunks: u32, delay_ms: u64) -> TestEngineConfig {
    TestEngineConfig {
        chunks,
        chunk_size: 8,
        chunk_delay: Duration::from_millis(delay_ms),
        ..Default::default()
    }
}

async fn json_of(res: reqwest::Response) -> Value {
    let text = res.text().await.expect("body read");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text:?}"))
}

async fn post_timed(net: &Net, body: &Value) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let res = net.post("/v1/chat/completions", body).await;
    (res, started.elapsed())
}

#[tokio::test]
async fn unknown_model_is_404_at_once() {
    let net = start_simple(1, engine()).await;
    let body = json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]});
    let (res, took) = post_timed(&net, &body).await;
    assert_eq!(res.status(), 404);
    assert!(took < PROMPT, "took {took:?}");
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let msg = assert_openai_error(&json_of(res).await, "model_not_found");
    assert!(msg.contains("no-such-model"), "{msg}");
    assert_eq!(net.devnet.engines[0].stats().requests_started, 0);
}

#[tokio::test]
async fn no_ready_worker_is_503_with_reason_then_recovers() {
    let net = start_simple(1, engine()).await;
    let proxy = &net.devnet.proxy;
    net.devnet.engines[0].set_failing(true);
    assert!(
        eventually(Duration::from_secs(5), || proxy.enabled_worker_count() == 0).await,
        "worker with a failing engine was not disabled at the proxy"
    );
    assert_eq!(proxy.worker_count(), 1, "the link stays up while disabled");

    let (res, took) = post_timed(&net, &net.chat_body(false)).await;
    assert_eq!(res.status(), 503);
    assert!(took < PROMPT, "took {took:?}");
    assert!(
        res.headers().contains_key("retry-after"),
        "503 without Retry-After: {:?}",
        res.headers()
    );
    let msg = assert_openai_error(&json_of(res).await, "no_capacity");
    assert!(
        msg.contains(&net.devnet.model) && msg.contains("ready"),
        "reason does not say why: {msg}"
    );

    net.devnet.engines[0].set_failing(false);
    assert!(
        eventually(Duration::from_secs(5), || proxy.enabled_worker_count() == 1).await,
        "worker did not re-enable after its engine recovered"
    );
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(net.devnet.engines[0].stats().requests_completed, 1);
}

#[tokio::test]
async fn requests_avoid_a_worker_whose_engine_is_down() {
    let net = start_simple(2, engine()).await;
    let proxy = &net.devnet.proxy;
    net.devnet.engines[0].set_failing(true);
    assert!(
        eventually(Duration::from_secs(5), || proxy.enabled_worker_count() == 1).await,
        "failing worker was not disabled"
    );
    for _ in 0..12 {
        let res = net
            .post("/v1/chat/completions", &net.chat_body(false))
            .await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(net.devnet.engines[0].stats().requests_started, 0);
    assert_eq!(net.devnet.engines[1].stats().requests_completed, 12);
}

/// DESIGN §4: "Worker fails before the first token → retry on another worker (bounded)".
/// The worker whose engine just broke is still enabled (its health probe has not run yet),
/// so the proxy sends it requests; the engine answers 500 before any token.
#[tokio::test]
async fn engine_error_before_first_token_is_retried_on_another_worker() {
    let mut config = DevnetConfig::for_tests(2, engine());
    // Probes only at start: the broken engine's worker stays enabled during the test.
    config.engine_probe_interval = Duration::from_secs(3600);
    let net = start(config).await;
    net.devnet.engines[0].set_failing(true);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let res = net
            .post("/v1/chat/completions", &net.chat_body(false))
            .await;
        statuses.push(res.status().as_u16());
    }
    assert!(
        statuses.iter().all(|&s| s == 200),
        "engine failures reached the app: {statuses:?}"
    );
    assert_eq!(net.devnet.engines[1].stats().requests_completed, 12);
}

#[tokio::test]
async fn app_disconnect_cancels_the_engine_request() {
    let net = start_simple(1, slow_engine(50, 100)).await;
    let res = net.post("/v1/chat/completions", &net.chat_body(true)).await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(3), body.next())
        .await
        .expect("first chunk in time")
        .expect("stream has a chunk")
        .expect("chunk read");
    assert!(!first.is_empty());
    let engine = &net.devnet.engines[0];
    assert_eq!(engine.stats().requests_started, 1);
    drop(body);
    assert!(
        eventually(Duration::from_secs(3), || engine.stats().streams_cancelled
            >= 1)
        .await,
        "engine kept generating after the app left: {:?}",
        engine.stats()
    );
    assert_eq!(engine.stats().requests_completed, 0);
}

#[tokio::test]
async fn malformed_requests_are_400_with_openai_errors() {
    let net = start_simple(1, engine()).await;
    let model = net.devnet.model.clone();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed JSON", b"{\"model\": ".to_vec(), "JSON"),
        ("not an object", b"[1, 2, 3]".to_vec(), "object"),
        (
            "model wrong type",
            json!({"model": 7, "messages": []}).to_string().into_bytes(),
            "model",
        ),
        (
            "stream wrong type",
            json!({"model": model, "messages": [], "stream": "yes"})
                .to_string()
                .into_bytes(),
            "stream",
        ),
        (
            "max_tokens negative",
            json!({"model": model, "messages": [], "max_tokens": -5})
                .to_string()
                .into_bytes(),
            "max_tokens",
        ),
    ];
    for (what, body, mentions) in cases {
        let res = net
            .http
            .post(net.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status(), 400, "{what}");
        let msg = assert_openai_error(&json_of(res).await, "invalid_request");
        assert!(msg.contains(mentions), "{what}: message {msg:?}");
    }
    assert_eq!(net.devnet.engines[0].stats().requests_started, 0);
}

#[tokio::test]
async fn oversize_body_is_400_with_clear_message() {
    let net = start_simple(1, engine()).await;
    // 17 MiB: a JSON string, so only the size is wrong.
    let mut body = Vec::with_capacity(17 << 20);
    body.push(b'"');
    body.resize((17 << 20) - 1, b'a');
    body.push(b'"');
    let res = net
        .http
        .post(net.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent and answered");
    assert_eq!(res.status(), 400);
    let msg = assert_openai_error(&json_of(res).await, "invalid_request");
    assert!(
        msg.contains("larger than") && msg.contains(&(16u64 << 20).to_string()),
        "message does not name the limit: {msg}"
    );
    // The network still serves normal requests afterwards.
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
}

/// Deterministic junk (xorshift), so failures are reproducible.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Sends `bytes`, then reads until the peer closes or 2 s pass.
/// Returns whether the peer closed the connection.
async fn throw_junk(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    // The peer may close before taking everything: a failed write is fine.
    let _ = tcp.write_all(bytes).await;
    let _ = tcp.flush().await;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Passes the proof of work of a proxy listener honestly, then sends `bytes` where the TLS
/// ClientHello belongs. Returns whether the proxy closed the connection.
async fn junk_after_pow(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let mut challenge = [0u8; 21];
    tcp.read_exact(&mut challenge).await.expect("pow challenge");
    assert_eq!(&challenge[..4], &cocoon_attest::pow::MAGIC);
    let salt: [u8; 16] = challenge[5..].try_into().unwrap();
    let nonce = cocoon_attest::pow::solve_nonce(&salt, challenge[4]);
    tcp.write_all(&nonce.to_le_bytes()).await.expect("nonce");
    let mut ok = [0u8; 1];
    tcp.read_exact(&mut ok).await.expect("pow verdict");
    assert_eq!(ok[0], 1, "honest proof of work refused");
    let _ = tcp.write_all(bytes).await;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn garbage_on_every_port_leaves_the_network_serving() {
    let net = start_simple(1, engine()).await;
    let proxy = &net.devnet.proxy;
    let ports = [
        ("client API", net.devnet.client.http_addr),
        ("proxy client link", proxy.client_addr),
        ("proxy worker link", proxy.worker_addr),
        ("proxy http", proxy.http_addr.expect("proxy http port")),
    ];
    let http_junk =
        b"GET /\x00\xff\xfe%%% HTTP/7.3\r\nHost: \x01\x02\r\nContent-Length: -9\r\n\r\n";
    for (name, addr) in ports {
        for (i, bytes) in [junk(4096, 0x9e37_79b9_7f4a_7c15), http_junk.to_vec()]
            .iter()
            .enumerate()
        {
            assert!(
                throw_junk(addr, bytes).await,
                "{name}: connection with junk #{i} was not closed within 2 s"
            );
        }
    }
    // Junk where the TLS ClientHello belongs, after an honest proof of work.
    for addr in [proxy.client_addr, proxy.worker_addr] {
        assert!(
            junk_after_pow(addr, &junk(4096, 42)).await,
            "{addr}: junk TLS was not refused"
        );
    }
    // Two junk connections on each of the two link ports, plus the two junk-TLS ones.
    let expected_rejections = 2 * 2 + 2;
    assert!(
        eventually(Duration::from_secs(3), || proxy
            .stats()
            .rejected_connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= expected_rejections)
        .await,
        "proxy did not count the junk connections as rejected"
    );
    assert_eq!(proxy.enabled_worker_count(), 1);
    assert_eq!(net.devnet.client.ready_proxies(), 1);
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
    let res = net.post("/v1/chat/completions", &net.chat_body(true)).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("[DONE]"));
}

#[tokio::test]
async fn deadline_passes_with_504_and_stops_the_engine() {
    // 20 chunks × 300 ms: the engine needs 6 s; the app allows 0.5 s.
    let net = start_simple(1, slow_engine(20, 300)).await;
    let mut body = net.chat_body(false);
    body["timeout"] = json!(0.5);
    let (res, took) = post_timed(&net, &body).await;
    assert_eq!(res.status(), 504);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    assert_openai_error(&json_of(res).await, "deadline_exceeded");
    let engine = &net.devnet.engines[0];
    assert!(
        eventually(Duration::from_secs(3), || engine.stats().streams_cancelled
            >= 1)
        .await,
        "engine kept working past the deadline: {:?}",
        engine.stats()
    );
}

#[tokio::test]
async fn streaming_deadline_ends_the_stream_with_an_error_event() {
    let net = start_simple(1, slow_engine(20, 300)).await;
    let mut body = net.chat_body(true);
    body["timeout"] = json!(1.0);
    let started = Instant::now();
    let res = net.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status(), 200, "the stream began before the deadline");
    let text = tokio::time::timeout(Duration::from_secs(4), res.text())
        .await
        .expect("stream ended soon after the deadline")
        .expect("body read");
    assert!(started.elapsed() < Duration::from_secs(3));
    let events = sse_events(&text);
    let last: Value = serde_json::from_str(events.last().expect("some event")).unwrap();
    assert_openai_error(&last, "deadline_exceeded");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn max_coefficient_below_every_worker_names_the_minimum() {
    let mut config = DevnetConfig::for_tests(1, engine());
    config.coefficients = vec![2000];
    let net = start(config).await;
    let mut body = net.chat_body(false);
    body["max_coefficient"] = json!(1000);
    let (res, took) = post_timed(&net, &body).await;
    assert_eq!(res.status(), 503);
    assert!(took < PROMPT, "took {took:?}");
    let msg = assert_openai_error(&json_of(res).await, "too_expensive");
    assert!(
        msg.contains(">= 2000"),
        "minimum coefficient not named: {msg}"
    );
    assert_eq!(net.devnet.engines[0].stats().requests_started, 0);
    body["max_coefficient"] = json!(2000);
    let res = net.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn unknown_endpoint_is_404_json_and_preflight_is_answered() {
    let net = start_simple(1, engine()).await;
    for (method, path) in [
        (reqwest::Method::GET, "/v1/nope"),
        (reqwest::Method::POST, "/v1/nope"),
        (reqwest::Method::GET, "/v2/models"),
    ] {
        let res = net
            .http
            .request(method.clone(), net.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        assert_openai_error(&json_of(res).await, "not_found");
    }
    // `/` is the dashboard page.
    let res = net.http.get(net.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let res = preflight(&net, "/v1/nope").await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    // CORS headers ride on answers of real endpoints too.
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

async fn preflight(net: &Net, path: &str) -> reqwest::Response {
    net.http
        .request(reqwest::Method::OPTIONS, net.url(path))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

/// What browsers actually send before a cross-origin POST: a preflight of the API path.
#[tokio::test]
async fn cors_preflight_of_api_endpoints_is_answered() {
    let net = start_simple(1, engine()).await;
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/models"] {
        let res = preflight(&net, path).await;
        assert!(
            res.status().is_success(),
            "preflight of {path}: {}",
            res.status()
        );
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
        let methods = res.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST"), "{path}: {methods}");
    }
}
