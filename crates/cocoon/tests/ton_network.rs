//! A whole network on TON: proxy, worker and client each on its own `TonChain` with its own
//! wallet, against a local TON network (the Tolk contracts in @ton/sandbox behind the
//! toncenter v2 API). The proxy deploys its contract through the root, the client deploys
//! and funds its contract, a paid request is answered, and settlement happens on the
//! contracts: the client is charged by voucher and the worker deploys its own contract and
//! is paid.

mod common;

#[path = "../../ton/tests/sandbox/mod.rs"]
mod sandbox;

use cocoon_chain::ledger::Address;
use cocoon_chain::{model_hash, Chain};
use cocoon_devnet::{dev_registry, DevnetConfig, RoleChains};
use cocoon_engine::test_engine::TestEngineConfig;
use cocoon_ton::chain::{TonChain, TonChainConfig};
use cocoon_ton::messages::root_add_model;
use cocoon_ton::wallet::{NodeWallet, WalletVersion};
use common::eventually;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const TON: u64 = 1_000_000_000;

#[test]
fn a_paid_request_settles_on_the_ton_contracts() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sb = sandbox::Sandbox::start();
    let engine = TestEngineConfig {
        models: vec!["test-model".into()],
        chunks: 4,
        chunk_size: 8,
        chunk_delay: Duration::ZERO,
    };
    let mut config = DevnetConfig::for_tests(1, engine);
    let model_id = cocoon_devnet::dev_model_id("test-model");

    // The network's operator deploys the root and allows the model.
    let (root, operator) = sb.deploy_root(1);
    sb.send(
        &operator,
        &root,
        root_add_model(1, &model_hash(&model_id)).unwrap(),
    );

    // Every node has its own funded wallet; the attestation policy is the devnet's.
    let node = |seed: u8| -> (Arc<dyn Chain>, String) {
        let wallet = NodeWallet::from_seed(&[seed; 32], WalletVersion::V4R2).unwrap();
        sb.fund(&wallet.address().to_hex(), 100 * TON);
        let mut cfg = TonChainConfig::new(sb.api_config(), root.clone(), [seed; 32]);
        cfg.poll = Duration::from_millis(20);
        cfg.confirm_timeout = Duration::from_secs(20);
        cfg.world_ttl = Duration::from_millis(200);
        cfg.registry_refresh = Duration::from_millis(500);
        cfg.policy = dev_registry(&model_id, config.pow_difficulty);
        let chain: Arc<dyn Chain> = TonChain::connect(cfg).unwrap();
        (chain, hex::encode(wallet.address().hash_part.as_slice()))
    };
    let (proxy, client, worker) = (node(2), node(3), node(4));
    assert!(
        client.0.registry().has_model(&model_id),
        "read from the root"
    );
    config.role_chains = Some(RoleChains {
        proxy: proxy.clone(),
        client: client.clone(),
        workers: vec![worker.clone()],
    });
    if let Some(p) = config.payments.as_mut() {
        p.client_deposit = 5 * TON;
    }

    rt.block_on(async {
        let net = common::start(config).await;
        let body = json!({
            "model": net.devnet.model,
            "messages": [{"role": "user", "content": "hello over TON"}],
            "max_tokens": 8,
        });
        let res = net.post("/v1/chat/completions", &body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cost = answer["usage"]["total_cost"].as_u64().expect("a cost");
        assert!(cost > 0);

        // The client contract exists at the address every node derives, funded, and is
        // charged by the proxy's voucher; the worker's contract is deployed by the worker
        // and paid.
        let proxy_owner = Address::from_hex(&proxy.1).unwrap();
        let proxy_contract = proxy
            .0
            .world()
            .unwrap()
            .proxies
            .values()
            .find(|p| p.owner == proxy_owner)
            .expect("the proxy deployed its contract through the root")
            .address;
        let client_owner = Address::from_hex(&client.1).unwrap();
        let worker_owner = Address::from_hex(&worker.1).unwrap();
        let client_contract = client
            .0
            .client_contract(&proxy_contract, &client_owner)
            .unwrap();
        let worker_contract = worker
            .0
            .worker_contract(&proxy_contract, &worker_owner)
            .unwrap();
        let c = client.0.clone();
        let charged = eventually(Duration::from_secs(60), || {
            c.world()
                .ok()
                .and_then(|w| w.clients.get(&client_contract).map(|c| c.tokens_charged))
                .is_some_and(|t| t > 0)
        })
        .await;
        assert!(charged, "the proxy charged the client contract");
        let w = worker.0.clone();
        let paid = eventually(Duration::from_secs(60), || {
            w.world()
                .ok()
                .and_then(|w| w.workers.get(&worker_contract).map(|c| c.tokens_paid))
                .is_some_and(|t| t > 0)
        })
        .await;
        assert!(paid, "the worker deployed its contract and was paid");
        // The proxy node sees the payout too once its view is refreshed (it caches briefly).
        let p = proxy.0.clone();
        let earned = eventually(Duration::from_secs(10), || {
            p.world()
                .ok()
                .and_then(|w| w.proxies.get(&proxy_contract).map(|p| p.commission))
                .is_some_and(|c| c > 0)
        })
        .await;
        assert!(earned, "the proxy earned its commission");
    });
}
