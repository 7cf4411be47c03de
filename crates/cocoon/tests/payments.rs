//! Money end to end (issue 3): every request is paid on the devnet's chain; usage carries
//! costs; the chain's charges equal the sum of costs; worker earnings plus commission equal
//! what clients paid; after closes every nanoTON is back in a wallet.

mod common;

use cocoon_chain::ledger::{Address, ContractState, Op};
use cocoon_chain::Chain;
use cocoon_devnet::{worker_owner, DevnetConfig, CLIENT_OWNER, PROXY_OWNER};
use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn engine() -> TestEngineConfig {
    TestEngineConfig {
        models: vec!["test-model".into()],
        chunks: 4,
        chunk_size: 8,
        chunk_delay: Duration::ZERO,
    }
}

/// The cost fields of a response's usage (JSON body or the SSE usage event).
fn usage_costs(stream: bool, text: &str) -> Value {
    if !stream {
        let v: Value = serde_json::from_str(text).expect("json body");
        return v["usage"].clone();
    }
    sse_events(text)
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|v| v["usage"].is_object())
        .map(|v| v["usage"].clone())
        .expect("a usage event")
}

async fn request_cost(net: &Net, stream: bool, i: usize) -> u64 {
    let body = json!({
        "model": net.devnet.model,
        "messages": [{"role": "user", "content": format!("request number {i} {}", "x".repeat(i % 7))}],
        "stream": stream,
        "max_tokens": 1 + (i % 5),
    });
    let res = net.post("/v1/chat/completions", &body).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let usage = usage_costs(stream, &text);
    let total = usage["total_cost"].as_u64().expect("usage.total_cost");
    let prompt = usage["prompt_total_cost"]
        .as_u64()
        .expect("prompt_total_cost");
    let completion = usage["completion_total_cost"]
        .as_u64()
        .expect("completion_total_cost");
    assert_eq!(prompt + completion, total);
    assert!(total > 0);
    total
}

fn wallet(name: &str) -> Address {
    Address::wallet(name)
}

/// Waits for `check` on the chain's world, polling.
async fn until(net: &Net, what: &str, mut check: impl FnMut(&cocoon_chain::ledger::World) -> bool) {
    let ok = eventually(Duration::from_secs(30), || {
        check(&net.devnet.chain.world().unwrap())
    })
    .await;
    assert!(ok, "timed out waiting for: {what}");
}

#[tokio::test]
async fn paid_requests_settle_on_chain_and_every_nanoton_returns() {
    let net = start(DevnetConfig::for_tests(2, engine())).await;
    let chain = net.devnet.chain.clone();
    let minted = chain.world().unwrap().minted;

    // 1,000 requests, mixed streaming and non-streaming, 25 at a time.
    let mut paid = 0u64;
    for batch in 0..40 {
        let costs = futures::future::join_all(
            (0..25).map(|j| request_cost(&net, (batch + j) % 2 == 0, batch * 25 + j)),
        )
        .await;
        paid += costs.iter().sum::<u64>();
    }

    let world = chain.world().unwrap();
    let client = *world
        .clients
        .keys()
        .next()
        .expect("the client deployed its contract");
    let proxy = world.clients[&client].proxy;
    let price = world.proxies[&proxy].params.price_per_token;

    // The proxy charges everything once the client is idle.
    until(&net, "all usage charged", |w| {
        w.clients[&client].tokens_charged * price == paid
    })
    .await;
    // And pays the workers for the same tokens.
    until(&net, "workers paid", |w| {
        w.workers.values().map(|c| c.tokens_paid).sum::<u64>() * price == paid
    })
    .await;
    let w = chain.world().unwrap();
    w.check_invariants().unwrap();
    let fee = w.proxies[&proxy].params.worker_fee_per_token;
    let earned: u64 = (0..2).map(|i| w.balance(&wallet(&worker_owner(i)))).sum();
    let commission = w.proxies[&proxy].commission;
    assert_eq!(
        earned + commission,
        paid,
        "worker earned + commission = client paid"
    );
    assert_eq!(earned, paid / price * fee);

    // The client closes: the proxy charges the rest and grants the refund at once.
    let owner = wallet(CLIENT_OWNER);
    chain
        .submit(Op::ClientRequestClose {
            sender: owner,
            client,
        })
        .unwrap();
    until(&net, "client refunded and closed", |w| {
        w.clients[&client].state == ContractState::Closed
    })
    .await;
    // The proxy owner closes the proxy: last payouts, then the close after its delay.
    let powner = wallet(PROXY_OWNER);
    chain
        .submit(Op::ProxyRequestClose {
            sender: powner,
            proxy,
        })
        .unwrap();
    until(&net, "workers closed", |w| {
        w.workers.values().all(|c| c.state == ContractState::Closed)
    })
    .await;
    let delay = chain.world().unwrap().proxies[&proxy]
        .params
        .proxy_delay_before_close_secs;
    chain.advance(delay + 1).unwrap();
    if chain.world().unwrap().proxies[&proxy].commission > 0 {
        chain
            .submit(Op::ProxyWithdraw {
                sender: powner,
                proxy,
            })
            .unwrap();
    }
    chain
        .submit(Op::ProxyCompleteClose {
            sender: powner,
            proxy,
        })
        .unwrap();
    let w = chain.world().unwrap();
    w.check_invariants().unwrap();
    assert_eq!(w.in_contracts(), 0, "every nanoTON is back in a wallet");
    assert_eq!(w.total(), u128::from(minted));
    // The client got back everything it did not spend.
    assert_eq!(
        w.balance(&owner),
        cocoon_devnet::DevnetPayments::fast().faucet - paid
    );
}

#[tokio::test]
async fn a_client_without_funds_is_refused_with_402() {
    let mut config = DevnetConfig::for_tests(1, engine());
    if let Some(p) = config.payments.as_mut() {
        // A deposit this small cannot cover one request's worst case.
        p.client_deposit = 1;
    }
    let net = start(config).await;
    let res = net
        .post("/v1/chat/completions", &net.chat_body(false))
        .await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 402, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("credit"),
        "{body}"
    );
}

/// Copies the proxy's state directory (key, DB and its WAL) at a quiescent moment.
fn snapshot(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn proxy_config(
    chain: std::sync::Arc<dyn Chain>,
    state_dir: std::path::PathBuf,
) -> cocoon_proxy::ProxyConfig {
    let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut payments = cocoon_proxy::ProxyPayments::new(state_dir);
    payments.commit_interval = Duration::from_millis(100);
    payments.anchor_interval = Duration::from_millis(300);
    cocoon_proxy::ProxyConfig {
        name: "proxy-restarted".into(),
        owner_address: PROXY_OWNER.into(),
        client_listen: any,
        worker_listen: any,
        http_listen: None,
        evidence: cocoon_attest::EvidenceKind::Sim,
        measurements: cocoon_attest::Measurements::for_label(cocoon_devnet::PROXY_IMAGE_LABEL),
        tdx_verifier: None,
        pow_difficulty: None,
        timing: Default::default(),
        chain,
        payments: Some(payments),
        routing: Default::default(),
    }
}

async fn send_requests(net: &Net, n: usize) -> u64 {
    let costs = futures::future::join_all((0..n).map(|i| request_cost(net, i % 2 == 0, i))).await;
    costs.iter().sum()
}

/// The proxy's DB head and anchor, from its stats.
fn anchored_seqno(net: &Net) -> u64 {
    let w = net.devnet.chain.world().unwrap();
    w.proxies
        .values()
        .map(|p| p.anchor_seqno)
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_restored_old_proxy_db_is_detected_and_refused() {
    let base = std::env::temp_dir().join(format!(
        "cocoon-rollback-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let state = base.join("live");
    let mut config = DevnetConfig::for_tests(1, engine());
    if let Some(p) = config.payments.as_mut() {
        p.state_dir = Some(state.clone());
    }
    let net = start(config).await;
    send_requests(&net, 20).await;
    // Quiescent and anchored: the snapshot is a consistent, fully anchored DB.
    let first = anchored_seqno(&net);
    assert!(
        eventually(Duration::from_secs(20), || anchored_seqno(&net) > first).await,
        "the proxy anchors"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    snapshot(&state, &base.join("old"));
    let old_anchor = anchored_seqno(&net);

    send_requests(&net, 20).await;
    assert!(
        eventually(Duration::from_secs(20), || anchored_seqno(&net)
            > old_anchor)
        .await,
        "later usage is anchored"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    snapshot(&state, &base.join("latest"));
    net.shutdown.cancel();

    let chain: std::sync::Arc<dyn Chain> = net.devnet.chain.clone();
    // The latest DB restarts fine: same contract, counters where they were.
    let stop = tokio_util::sync::CancellationToken::new();
    let restarted = cocoon_proxy::start(
        proxy_config(chain.clone(), base.join("latest")),
        stop.clone(),
    )
    .await
    .expect("the latest DB restarts");
    stop.cancel();
    let _ = restarted.task.await;

    // The old copy is behind the chain's anchor: refused, with a clear reason.
    let stop = tokio_util::sync::CancellationToken::new();
    let err = match cocoon_proxy::start(proxy_config(chain, base.join("old")), stop.clone()).await {
        Ok(p) => panic!(
            "a rolled-back proxy DB must be refused; old anchor {old_anchor}, now {}",
            p.http_addr.is_some()
        ),
        Err(e) => e.to_string(),
    };
    stop.cancel();
    assert!(err.contains("rolled back"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}
