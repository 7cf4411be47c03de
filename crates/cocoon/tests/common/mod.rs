//! Helpers shared by the integration tests.
#![allow(dead_code)]

use cocoon_devnet::{Devnet, DevnetConfig};
use cocoon_engine::test_engine::TestEngineConfig;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

pub struct Net {
    pub devnet: Devnet,
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(config: DevnetConfig) -> Net {
    init_tracing();
    let shutdown = CancellationToken::new();
    let devnet = cocoon_devnet::start(config, shutdown.clone())
        .await
        .expect("devnet starts");
    devnet
        .wait_ready(Duration::from_secs(20))
        .await
        .expect("devnet ready");
    Net {
        devnet,
        shutdown,
        http: reqwest::Client::new(),
    }
}

pub async fn start_simple(workers: usize, engine: TestEngineConfig) -> Net {
    start(DevnetConfig::for_tests(workers, engine)).await
}

impl Net {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.devnet.api_url.trim_end_matches("/v1"), path)
    }

    pub fn chat_body(&self, stream: bool) -> Value {
        json!({"model": self.devnet.model, "messages": [{"role": "user", "content": "hello there cocoon"}], "stream": stream})
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

/// Splits an SSE body into its `data:` payloads.
pub fn sse_events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:").map(|d| d.trim().to_string()))
        .collect()
}

/// Polls `check` every 20 ms until it returns true or `within` passes; returns whether it held.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts `body` is an OpenAI error object `{"error":{"message","type","code"}}` with `code`,
/// and returns its message.
pub fn assert_openai_error(body: &Value, code: &str) -> String {
    let err = &body["error"];
    assert!(err.is_object(), "not an OpenAI error body: {body}");
    let message = err["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error.message is not a string: {body}"));
    assert!(!message.is_empty(), "empty error message: {body}");
    assert!(
        err["type"].is_string(),
        "error.type is not a string: {body}"
    );
    assert_eq!(err["code"], code, "unexpected error code: {body}");
    message.to_string()
}

/// Starts a test engine on a loopback port; returns it and its `/v1` base URL.
pub async fn spawn_test_engine(
    config: TestEngineConfig,
    shutdown: &CancellationToken,
) -> (cocoon_engine::test_engine::TestEngine, String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("engine port");
    let addr = listener.local_addr().expect("engine address");
    let engine = cocoon_engine::test_engine::TestEngine::new(config);
    tokio::spawn(engine.clone().serve(listener, shutdown.clone()));
    (engine, format!("http://{addr}/v1"))
}

/// Config of a worker outside the devnet's own set, dialing the devnet's proxy with its own
/// test engine. Callers tweak model id, measurements etc. before `cocoon_worker::start`.
pub async fn extra_worker_config(
    net: &Net,
    name: &str,
    engine: TestEngineConfig,
) -> (
    cocoon_worker::WorkerConfig,
    cocoon_engine::test_engine::TestEngine,
) {
    let (engine, url) = spawn_test_engine(engine, &net.shutdown).await;
    let http = cocoon_engine::HttpEngine::new(&url, None).expect("engine url");
    let config = cocoon_worker::WorkerConfig {
        name: name.to_string(),
        owner_address: format!("{name}-owner"),
        model_id: cocoon_devnet::dev_model_id(&net.devnet.model),
        coefficient: 1000,
        max_active_requests: 8,
        proxies: vec![net.devnet.proxy.worker_addr.to_string()],
        http_listen: None,
        admin_token: None,
        weights: None,
        evidence: cocoon_attest::EvidenceKind::Sim,
        measurements: cocoon_attest::Measurements::for_label(cocoon_devnet::WORKER_IMAGE_LABEL),
        tdx_verifier: None,
        hardware: cocoon_worker::detect_hardware(),
        max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
        engine_probe_interval: Duration::from_millis(100),
        reconnect_interval: Duration::from_millis(100),
        timing: cocoon_net::LinkTiming::default(),
        engine: std::sync::Arc::new(http),
        token_counter: None,
        chain: net.devnet.chain.clone(),
    };
    (config, engine)
}

/// A free port for a child process to bind. Chosen below the kernel's ephemeral range
/// (32768+), where ports bound with port 0 by other tests running in parallel come from, so
/// nobody can take it between our check and the child's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    loop {
        let n = seed.wrapping_add(
            COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let port = 20_000 + (n % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
