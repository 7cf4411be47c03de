//! Client-side proxy failover (issue 6): a client linked to two proxies keeps serving every
//! request when one proxy goes away.

mod common;

use cocoon_chain::ledger::{Address, Op};
use cocoon_chain::Chain;
use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn engine() -> TestEngineConfig {
    TestEngineConfig {
        models: vec!["test-model".into()],
        chunks: 4,
        chunk_size: 8,
        chunk_delay: Duration::ZERO,
    }
}

fn mint(net: &Net, name: &str) {
    net.devnet
        .chain
        .submit(Op::Mint {
            to: Address::wallet(name),
            amount: 100 * cocoon_devnet::TON,
        })
        .unwrap();
}

#[tokio::test]
async fn requests_keep_succeeding_when_one_of_two_proxies_goes_down() {
    let net = start_simple(1, engine()).await;
    let chain: std::sync::Arc<dyn Chain> = net.devnet.chain.clone();
    let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();

    // A second proxy with its own worker.
    mint(&net, "proxy-a-owner");
    let stop_a = CancellationToken::new();
    let mut payments = cocoon_proxy::ProxyPayments::new(std::env::temp_dir().join(format!(
        "cocoon-failover-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    )));
    payments.commit_interval = Duration::from_millis(100);
    payments.anchor_interval = Duration::from_millis(300);
    let proxy_a = cocoon_proxy::start(
        cocoon_proxy::ProxyConfig {
            name: "proxy-a".into(),
            owner_address: "proxy-a-owner".into(),
            client_listen: any,
            worker_listen: any,
            http_listen: None,
            evidence: cocoon_attest::EvidenceKind::Sim,
            measurements: cocoon_attest::Measurements::for_label(cocoon_devnet::PROXY_IMAGE_LABEL),
            tdx_verifier: None,
            pow_difficulty: None,
            timing: Default::default(),
            chain: chain.clone(),
            payments: Some(payments),
            routing: Default::default(),
        },
        stop_a.clone(),
    )
    .await
    .unwrap();
    let (mut worker_config, _engine_a) = extra_worker_config(&net, "worker-a", engine()).await;
    worker_config.proxies = vec![proxy_a.worker_addr.to_string()];
    let _worker_a = cocoon_worker::start(worker_config, net.shutdown.clone()).unwrap();

    // A client linked to both proxies.
    mint(&net, "failover-owner");
    let client = cocoon_client::start(
        cocoon_client::ClientConfig {
            name: "client-failover".into(),
            owner_address: "failover-owner".into(),
            http_listen: any,
            proxies: vec![
                proxy_a.client_addr.to_string(),
                net.devnet.proxy.client_addr.to_string(),
            ],
            max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
            tdx_verifier: None,
            reconnect_interval: Duration::from_millis(100),
            timing: Default::default(),
            defaults: Default::default(),
            chain,
            payments: Some(cocoon_client::ClientPayments::with_deposit(
                cocoon_devnet::TON,
            )),
            api_keys: Vec::new(),
        },
        net.shutdown.clone(),
    )
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(15), || client.ready_proxies() == 2
            && proxy_a.enabled_worker_count() == 1)
        .await,
        "client linked to both proxies"
    );
    let url = format!("http://{}/v1/chat/completions", client.http_addr);
    let send = |stream: bool| net.http.post(&url).json(&net.chat_body(stream)).send();
    for i in 0..10 {
        let res = send(i % 2 == 0).await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }

    // Proxy A goes away; requests racing its departure are retried on the other proxy.
    stop_a.cancel();
    let results = futures::future::join_all((0..30).map(|i| async move {
        let res = send(i % 2 == 0).await.unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        (status, body)
    }))
    .await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert!(!body.contains("\"error\""), "{body}");
    }
    assert!(
        eventually(Duration::from_secs(10), || client.ready_proxies() == 1).await,
        "the client dropped the dead proxy's link"
    );
    let res = send(false).await.unwrap();
    assert_eq!(res.status(), 200);
}
