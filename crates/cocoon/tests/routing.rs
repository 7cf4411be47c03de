//! Worker choice (issue 6, DESIGN §8): speed, price and reputation decide; a failing
//! worker is cooled down by its breaker and comes back once it heals.

mod common;

use cocoon_devnet::DevnetConfig;
use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use serde_json::Value;
use std::time::Duration;

fn engine(chunk_delay_ms: u64) -> TestEngineConfig {
    TestEngineConfig {
        models: vec!["test-model".into()],
        chunks: 4,
        chunk_size: 8,
        chunk_delay: Duration::from_millis(chunk_delay_ms),
    }
}

async fn sequential(net: &Net, n: usize) {
    for i in 0..n {
        let res = net
            .post("/v1/chat/completions", &net.chat_body(i % 2 == 0))
            .await;
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
}

fn served(net: &Net, name: &str) -> u64 {
    net.devnet
        .proxy
        .served_by_worker()
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, s)| s)
}

async fn proxy_stats(net: &Net) -> Value {
    let addr = net.devnet.proxy.http_addr.expect("proxy stats port");
    net.http
        .get(format!("http://{addr}/jsonstats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_fast_worker_gets_most_sequential_requests() {
    let net = start_simple(1, engine(0)).await;
    let (config, _slow_engine) = extra_worker_config(&net, "worker-slow", engine(25)).await;
    let _slow = cocoon_worker::start(config, net.shutdown.clone()).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 2)
        .await
    );

    sequential(&net, 50).await;
    let fast = served(&net, "worker-0");
    let slow = served(&net, "worker-slow");
    assert_eq!(fast + slow, 50);
    eprintln!("routing split: fast {fast}, slow {slow}");
    let stats = proxy_stats(&net).await;
    assert!(
        fast >= 40,
        "fast worker served {fast} of 50 (slow {slow}): {}",
        stats["routing_decisions"][15]
    );
    // Every input of the decisions is visible.
    let stats = proxy_stats(&net).await;
    let decision = &stats["routing_decisions"][0];
    assert!(decision["candidates"][0]["score"].is_number(), "{stats}");
    assert!(stats["workers"][0]["ttft_ms"].is_number(), "{stats}");
}

#[tokio::test]
async fn the_cheaper_of_equally_fast_workers_gets_most() {
    let mut config = DevnetConfig::for_tests(2, engine(0));
    config.coefficients = vec![2000, 1000];
    let net = start(config).await;
    sequential(&net, 50).await;
    let dear = served(&net, "worker-0");
    let cheap = served(&net, "worker-1");
    eprintln!("price split: cheap (×1.0) {cheap}, dear (×2.0) {dear}");
    assert!(
        cheap >= 35,
        "cheap worker served {cheap} of 50 (dear {dear})"
    );
}

#[tokio::test]
async fn a_failing_worker_is_cooled_down_and_comes_back_when_healed() {
    let net = start_simple(1, engine(0)).await;
    let (mut config, flaky_engine) = extra_worker_config(&net, "worker-flaky", engine(0)).await;
    // The worker's own health probe would disable it; keep it enabled so only the proxy's
    // breaker protects the app.
    config.engine_probe_interval = Duration::from_secs(3600);
    let _flaky = cocoon_worker::start(config, net.shutdown.clone()).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 2)
        .await
    );

    flaky_engine.set_failing(true);
    let before_failing = flaky_engine.stats().requests_started;
    // Every app request still succeeds: a failure before the first byte is retried.
    sequential(&net, 30).await;
    // The flaky worker stops getting traffic within its breaker window: its reputation
    // drops at the first failure and its breaker opens after 3; only rare probes and
    // explorations reach it.
    let tried = flaky_engine.stats().requests_started - before_failing;
    assert!(
        tried <= 8,
        "the failing worker kept getting traffic: {tried} of 30"
    );
    assert_eq!(served(&net, "worker-flaky"), 0);

    flaky_engine.set_failing(false);
    // Cooldown 500 ms and reputation half-life 500 ms in the test devnet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = served(&net, "worker-flaky");
    sequential(&net, 30).await;
    let after = served(&net, "worker-flaky");
    let stats = proxy_stats(&net).await;
    // Its first request after the cooldown is a probe; once that succeeds it takes part in
    // routing again (how much it gets then depends on measured speed).
    assert!(
        after > before,
        "the healed worker got {} of 30 requests back: {}",
        after - before,
        stats["routing_decisions"][15]
    );
    assert!(
        stats["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["breaker"] == "closed"),
        "{stats}"
    );
}
