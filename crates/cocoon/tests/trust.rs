//! Trust in the real handshakes (DESIGN §3, §4, §5): RA-TLS evidence, image and model
//! allowlists from the registry, applied to new connections without restarts.

mod common;

use cocoon_attest::{EvidenceKind, Identity, Measurements, Policy, PolicySource};
use cocoon_chain::{model_hash, Chain, Role};
use cocoon_engine::test_engine::TestEngineConfig;
use cocoon_net::{dial, LinkTiming};
use common::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

fn engine() -> TestEngineConfig {
    TestEngineConfig {
        chunks: 3,
        chunk_size: 8,
        ..Default::default()
    }
}

fn rejected(net: &Net) -> u64 {
    net.devnet
        .proxy
        .stats()
        .rejected_connections
        .load(Ordering::Relaxed)
}

/// The policy a node of any role would apply to proxies right now, from the registry.
fn proxy_policy_now(net: &Net) -> Arc<dyn PolicySource> {
    let registry = net.devnet.chain.registry();
    Arc::new(Policy {
        allow_none: registry.allow_none,
        allow_sim: registry.allow_sim,
        allowed_image_hashes: registry.image_allowlist(Role::Proxy),
        ..Default::default()
    })
}

/// Dials `addr` as an app-side client would (PoW, RA-TLS) and reports how it ended:
/// `Ok(())` when the server accepted the link, `Err(reason)` when the dial failed or the
/// server dropped the connection right after the handshake.
async fn dial_and_hold(
    addr: std::net::SocketAddr,
    identity: &Identity,
    policy: Arc<dyn PolicySource>,
) -> Result<(), String> {
    let tls = identity.client_config(policy).expect("client TLS config");
    let timing = LinkTiming {
        handshake_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let (mut stream, _peer) = dial(
        &addr.to_string(),
        tls,
        cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
        &timing,
    )
    .await
    .map_err(|e| e.to_string())?;
    // In TLS 1.3 the client finishes first; a server refusing our certificate says so
    // with an alert right after. A server that accepted us speaks HTTP/2 (its SETTINGS
    // frame) or waits for our preface.
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(0)) => Err("server closed the connection".into()),
        Ok(Err(e)) => Err(format!("server dropped the connection: {e}")),
    }
}

#[tokio::test]
async fn worker_with_unlisted_image_is_refused_until_allowlisted() {
    let net = start_simple(0, engine()).await;
    let proxy = &net.devnet.proxy;
    let evil = Measurements::for_label("evil-image");
    let (mut config, _engine) = extra_worker_config(&net, "evil-worker", engine()).await;
    config.measurements = evil;
    let worker = cocoon_worker::start(config, net.shutdown.clone()).expect("worker starts");

    assert!(
        eventually(Duration::from_secs(5), || rejected(&net) >= 2).await,
        "proxy did not refuse the worker's handshakes (rejected {})",
        rejected(&net)
    );
    assert_eq!(proxy.worker_count(), 0, "unlisted image joined the proxy");

    net.devnet
        .chain
        .update(|r| {
            r.worker_image_hashes.insert(evil.image_hash());
        })
        .unwrap();
    assert!(
        eventually(Duration::from_secs(15), || proxy.enabled_worker_count()
            == 1)
        .await,
        "allowlisted worker did not join (rejected {})",
        rejected(&net)
    );
    assert!(worker.is_enabled());
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn client_certificate_binding_another_key_is_refused() {
    let net = start_simple(1, engine()).await;
    let addr = net.devnet.proxy.client_addr;
    let before = rejected(&net);
    let label = Measurements::for_label("cocoon-client");

    // Control: an honest client identity gets a link.
    let honest = Identity::generate(EvidenceKind::Sim, &label).unwrap();
    dial_and_hold(addr, &honest, proxy_policy_now(&net))
        .await
        .expect("honest client is accepted");

    for kind in [EvidenceKind::Sim, EvidenceKind::None] {
        let lifted = Identity::generate_with_foreign_binding(kind, &label).unwrap();
        let outcome = dial_and_hold(addr, &lifted, proxy_policy_now(&net)).await;
        assert!(
            outcome.is_err(),
            "{kind}: certificate binding another key was accepted"
        );
    }
    assert!(
        eventually(Duration::from_secs(3), || rejected(&net) >= before + 2).await,
        "proxy did not count the refusals (rejected {} → {})",
        before,
        rejected(&net)
    );
    assert_eq!(
        rejected(&net),
        before + 2,
        "the honest client was refused too"
    );
    // The network's own client was not disturbed.
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn proxy_with_unlisted_image_is_refused_by_clients_and_workers() {
    let net = start_simple(1, engine()).await;
    let proxy = &net.devnet.proxy;
    let addr = proxy.client_addr;
    let me = Identity::generate(
        EvidenceKind::None,
        &Measurements::for_label("cocoon-client"),
    )
    .unwrap();
    dial_and_hold(addr, &me, proxy_policy_now(&net))
        .await
        .expect("proxy is trusted while its image is listed");

    let proxy_image = Measurements::for_label(cocoon_devnet::PROXY_IMAGE_LABEL).image_hash();
    let other = Measurements::for_label("some-other-proxy").image_hash();
    net.devnet
        .chain
        .update(|r| r.proxy_image_hashes = [other].into())
        .unwrap();
    let before = rejected(&net);

    // A raw dial under the current registry policy fails in the handshake, naming why.
    let err = dial_and_hold(addr, &me, proxy_policy_now(&net))
        .await
        .expect_err("proxy with unlisted image trusted");
    assert!(
        err.contains("ImageHashNotAllowed") && err.contains(&hex(proxy_image)),
        "not an attestation refusal: {err}"
    );

    net.devnet
        .chain
        .submit(cocoon_chain::ledger::Op::Mint {
            to: cocoon_chain::ledger::Address::wallet("late-owner"),
            amount: 100 * cocoon_devnet::TON,
        })
        .unwrap();
    // A fresh client does not get a link (its verifier reads the registry per handshake) …
    let client = cocoon_client::start(
        cocoon_client::ClientConfig {
            api_keys: Vec::new(),
            payments: Some(cocoon_client::ClientPayments::with_deposit(
                cocoon_devnet::TON,
            )),
            name: "client-late".into(),
            owner_address: "late-owner".into(),
            http_listen: ([127, 0, 0, 1], 0).into(),
            proxies: vec![addr.to_string()],
            max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
            tdx_verifier: None,
            reconnect_interval: Duration::from_millis(100),
            timing: LinkTiming::default(),
            defaults: Default::default(),
            chain: net.devnet.chain.clone(),
        },
        net.shutdown.clone(),
    )
    .await
    .expect("client starts");
    // … nor does a fresh worker.
    let (config, _engine) = extra_worker_config(&net, "worker-late", engine()).await;
    let _worker = cocoon_worker::start(config, net.shutdown.clone()).expect("worker starts");

    // Each refusal aborts the handshake, which the proxy sees as a rejected connection.
    assert!(
        eventually(Duration::from_secs(5), || rejected(&net) >= before + 3).await,
        "new client and worker did not abort their handshakes (rejected {before} → {})",
        rejected(&net)
    );
    assert_eq!(
        client.ready_proxies(),
        0,
        "client trusted an unlisted proxy"
    );
    assert_eq!(proxy.worker_count(), 1, "worker trusted an unlisted proxy");
    let res = net
        .http
        .post(format!("http://{}/v1/chat/completions", client.http_addr))
        .json(&net.chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);

    // Links made before the change stay: registry changes apply to new connections.
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    assert_eq!(res.status(), 200);

    // Listing the proxy again lets the newcomers in.
    net.devnet
        .chain
        .update(|r| {
            r.proxy_image_hashes.insert(proxy_image);
        })
        .unwrap();
    assert!(
        eventually(Duration::from_secs(15), || client.ready_proxies() == 1
            && proxy.enabled_worker_count() == 2)
        .await,
        "client ({}) or worker ({}) did not connect once the proxy was listed",
        client.ready_proxies(),
        proxy.enabled_worker_count()
    );
}

#[tokio::test]
async fn worker_with_unlisted_model_is_refused() {
    let net = start_simple(0, engine()).await;
    let proxy = &net.devnet.proxy;
    let rogue_id = "rogue-model@dev:unverified";
    let tampered_id = format!("{}@dev:tampered", net.devnet.model);
    let mut workers = Vec::new();
    for (name, model_id) in [("rogue", rogue_id.to_string()), ("tampered", tampered_id)] {
        let served = TestEngineConfig {
            models: vec![cocoon_worker::base_model_name(&model_id).to_string()],
            ..engine()
        };
        let (mut config, _engine) = extra_worker_config(&net, name, served).await;
        config.model_id = model_id;
        let worker = cocoon_worker::start(config, net.shutdown.clone()).expect("worker starts");
        workers.push((worker, _engine));
    }
    // Both engines answer, so both workers offer themselves to the proxy …
    assert!(
        eventually(Duration::from_secs(5), || workers
            .iter()
            .all(|(w, _)| w.is_enabled()))
        .await
    );
    // … which turns them away. An allowed worker joins in well under this time (see below).
    assert!(
        !eventually(Duration::from_secs(1), || proxy.worker_count() > 0).await,
        "a worker with an unlisted model joined"
    );
    let res = net
        .post(
            "/v1/chat/completions",
            &serde_json::json!({"model": "rogue-model", "messages": []}),
        )
        .await;
    assert_eq!(res.status(), 404);

    // Control: listing the rogue model lets exactly that worker in.
    net.devnet
        .chain
        .update(|r| {
            r.model_hashes.insert(model_hash(rogue_id));
        })
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || proxy.worker_count() == 1).await,
        "worker did not join once its model was listed"
    );
    assert!(
        !eventually(Duration::from_millis(500), || proxy.worker_count() > 1).await,
        "worker with tampered weights hash joined"
    );
    let res = net
        .post(
            "/v1/chat/completions",
            &serde_json::json!({"model": "rogue-model", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
