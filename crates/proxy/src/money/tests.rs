//! The books against an in-memory chain: admission, billing, batches, anchors, vouchers,
//! and the balance compare's rollback alarm.

use super::{Payments, ProxyPayments};
use cocoon_chain::{Chain, LocalChain, Registry};
use cocoon_ledger::{Address, CounterView, Op, VoucherOp};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("cocoon-books-{}", rand::random::<u64>()))
}

fn setup() -> (Arc<LocalChain>, Arc<Payments>) {
    let chain = LocalChain::new(Registry::default());
    for name in ["owner", "client-owner"] {
        chain
            .submit(Op::Mint {
                to: Address::wallet(name),
                amount: 100_000_000_000,
            })
            .unwrap();
    }
    let dyn_chain: Arc<dyn Chain> = chain.clone();
    let payments = Payments::open(
        ProxyPayments::new(temp_dir()),
        Address::wallet("owner"),
        dyn_chain,
    )
    .unwrap();
    (chain, payments)
}

#[tokio::test]
async fn usage_is_signed_only_once_anchored_and_a_peer_ahead_raises_the_alarm() {
    let (chain, p) = setup();
    let owner = Address::wallet("client-owner");
    let client = p.client_contract(&owner).await.unwrap();
    chain
        .submit(Op::DeployClient {
            owner,
            proxy: p.contract,
            deposit: 10_000_000_000,
        })
        .unwrap();
    p.join_client(client, owner, |_| Ok(())).await.unwrap();
    let worker = p
        .join_worker(Address::wallet("worker-owner"))
        .await
        .unwrap();

    // A request reserves its worst case, then bills what was used to both sides.
    let ticket = p.admit(&client, 100, 10, 1000).unwrap();
    assert!(ticket.reserved > 0);
    assert_eq!(ticket.settle(Some(worker), 42), 42);
    // A dropped ticket frees its reservation and bills nothing.
    drop(p.admit(&client, 100, 10, 1000).unwrap());
    let status = p.worker_status(&worker);
    assert!(
        status.voucher.is_none(),
        "nothing is signed before an anchor"
    );

    p.commit_batch().await;
    assert!(p.worker_status(&worker).voucher.is_none());
    p.anchor().await;
    let v = cocoon_proto::money::voucher_from_wire(p.worker_status(&worker).voucher.as_ref())
        .unwrap()
        .expect("a voucher for anchored usage");
    assert_eq!(
        (v.op, v.contract, v.cumulative),
        (VoucherOp::WorkerPayout, worker, 42)
    );
    v.verify(&p.public).unwrap();
    let world = chain.world().unwrap();
    assert_eq!(world.proxies[&p.contract].anchor_seqno, 1);

    // The worker holding what we reported is fine …
    let seen = CounterView {
        in_memory: 42,
        committed_db: 42,
        committed_chain: 42,
    };
    p.compare_worker(&worker, Some(&v), &seen).unwrap();
    assert_eq!(p.stats.alarms.load(Relaxed), 0);
    // … one that saw more than we know means our state went back: refused, alarm raised,
    // nothing aborts.
    let ahead = CounterView {
        committed_db: 50,
        in_memory: 50,
        ..seen
    };
    let err = p.compare_worker(&worker, Some(&v), &ahead).unwrap_err();
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(p.stats.alarms.load(Relaxed), 1);
    assert!(p.stats_json()["last_alarm"].as_str().is_some());
    // A voucher we never signed is a protocol error, not an alarm.
    let forged = cocoon_ledger::Voucher::new(VoucherOp::WorkerPayout, worker, 1_000)
        .sign(&cocoon_ledger::keypair_from_seed(&[9; 32]).unwrap());
    assert!(p.compare_worker(&worker, Some(&forged), &seen).is_err());
    assert_eq!(p.stats.alarms.load(Relaxed), 1);

    // Settlement charges the idle client and pays the worker for the same tokens.
    p.settle().await;
    let world = chain.world().unwrap();
    // Thresholds are high and the peers are fresh: nothing due yet.
    assert_eq!(world.clients[&client].tokens_charged, 0);
}

#[tokio::test]
async fn credit_is_bounded_by_the_stake_and_refreshed_from_chain() {
    let (chain, p) = setup();
    let owner = Address::wallet("client-owner");
    let client = p.client_contract(&owner).await.unwrap();
    // A deposit of 100 tokens' worth: the worst case of a request does not fit.
    let price = chain.registry().params.price_per_token;
    chain
        .submit(Op::DeployClient {
            owner,
            proxy: p.contract,
            deposit: 100 * price,
        })
        .unwrap();
    p.join_client(client, owner, |_| Ok(())).await.unwrap();
    let (code, message) = p.admit(&client, 100, 1000, 1000).err().unwrap();
    assert_eq!(code, cocoon_proto::ErrorCode::InsufficientFunds);
    assert!(message.contains("top up"), "{message}");
    // Unknown clients are not served.
    let (code, _) = p
        .admit(&Address::wallet("nobody"), 1, 1, 1000)
        .err()
        .unwrap();
    assert_eq!(code, cocoon_proto::ErrorCode::Unauthorized);
    // A top-up seen on chain at the next settlement raises the credit.
    chain
        .submit(Op::ClientTopUp {
            sender: owner,
            client,
            amount: 10_000_000_000,
        })
        .unwrap();
    p.settle().await;
    assert!(p.admit(&client, 100, 1000, 1000).is_ok());
}
