//! The ledger world the `ledger_json` target applies ops to, shared with the corpus
//! generator so the seeds name its contracts. The world comes from the ledger's own test
//! helpers (`crates/ledger/tests/common`).

use std::sync::OnceLock;

use cocoon_ledger::*;

// (It allows its own dead code.)
#[path = "../../crates/ledger/tests/common/mod.rs"]
mod common;

use common::{Net, CLIENT_STAKE, PROXY_STAKE};

/// A world with a proxy (key seed `[7; 32]`), a client of "alice" and a worker of "w";
/// one op of every kind that applies to it, with genuine vouchers and anchors.
pub struct Start {
    pub world: World,
    pub ops: Vec<Op>,
    pub proxy: Address,
    pub client: Address,
    pub worker: Address,
}

pub fn start() -> &'static Start {
    static START: OnceLock<Start> = OnceLock::new();
    START.get_or_init(|| {
        let mut n = Net::new(&["alice", "bob", "w"], 100 * CLIENT_STAKE);
        let client = n.client("alice", 10 * CLIENT_STAKE);
        let worker = n.worker("w");
        let alice = Address::wallet("alice");
        let bob = Address::wallet("bob");
        let (owner, proxy) = (n.proxy_owner, n.proxy);
        let ops = vec![
            Op::Mint {
                to: alice,
                amount: 5,
            },
            Op::Transfer {
                from: alice,
                to: bob,
                amount: 7,
            },
            Op::DeployProxy {
                owner: alice,
                key: public_key(&n.key),
                params_version: 2,
                stake: PROXY_STAKE,
            },
            Op::ProxyIncreaseStake {
                sender: owner,
                proxy,
                amount: 1,
            },
            Op::ProxyAnchor {
                anchor: SignedAnchor::sign(&n.key, proxy, 3, SessionHash([4; 32])),
            },
            Op::DeployClient {
                owner: bob,
                proxy,
                deposit: CLIENT_STAKE,
            },
            Op::ClientTopUp {
                sender: alice,
                client,
                amount: 10,
            },
            Op::ClientRegister {
                sender: alice,
                client,
                nonce: 9,
            },
            Op::ClientIncreaseStake {
                sender: alice,
                client,
                stake: CLIENT_STAKE + 1,
            },
            Op::ClientSetSecretHash {
                sender: alice,
                client,
                hash: [5; 32],
            },
            Op::ClientCharge {
                client,
                voucher: n.sign(VoucherOp::ClientCharge, client, 100),
            },
            Op::ClientGrantRefund {
                client,
                voucher: n.sign(VoucherOp::ClientGrantRefund, client, 150),
            },
            Op::DeployWorker { owner: bob, proxy },
            Op::WorkerPayout {
                worker,
                voucher: n.sign(VoucherOp::WorkerPayout, worker, 50),
            },
            Op::WorkerLastPayout {
                worker,
                voucher: n.sign(VoucherOp::WorkerLastPayout, worker, 60),
            },
            Op::ClientRequestClose {
                sender: alice,
                client,
            },
            Op::ClientWithdraw {
                sender: alice,
                client,
            },
            Op::ProxyRequestClose {
                sender: owner,
                proxy,
            },
            Op::ProxyCompleteClose {
                sender: owner,
                proxy,
            },
            Op::ProxyWithdraw {
                sender: owner,
                proxy,
            },
        ];
        Start {
            world: n.world,
            ops,
            proxy,
            client,
            worker,
        }
    })
}
