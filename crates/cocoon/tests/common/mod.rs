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
