//! Shared scenario vectors (issue 9): sequences of contract operations run through the
//! embedded chain's state machines ([`World`]), with the expected outcome, coin movements and
//! contract states after every step. The TON contracts' sandbox tests (`contracts/`) replay
//! the same file against the Tolk contracts and must agree exactly; any divergence is a bug in
//! one of the two.
//!
//! The file is checked in at `contracts/vectors/scenarios.json`. This test regenerates it and
//! fails when the checked-in copy differs (the state machines changed without the vectors):
//! `UPDATE_VECTORS=1 cargo test -p cocoon-ledger --test vectors` rewrites it.
//!
//! Vectors name parties by role (`proxy_owner`, `client_owner`, `worker_owner`, `stranger`;
//! contracts `proxy`, `client`, `worker`), and vouchers by what they say (op, contract,
//! cumulative tokens, signer `proxy` or `stranger`): each implementation signs in its own
//! format (the embedded chain's message bytes, a TON cell hash).

#[path = "../../../tests/vectors/sorted_json.rs"]
mod sorted_json;
use sorted_json::sorted;

use cocoon_ledger::*;
use ring::signature::Ed25519KeyPair;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const TON: u64 = 1_000_000_000;

fn params() -> RootParams {
    RootParams {
        min_client_stake: TON,
        min_proxy_stake: 2 * TON,
        client_delay_before_close_secs: 300,
        proxy_delay_before_close_secs: 600,
        ..RootParams::default()
    }
}

/// One scenario being recorded.
struct Scenario {
    name: &'static str,
    about: &'static str,
    world: World,
    proxy_key: Ed25519KeyPair,
    stranger_key: Ed25519KeyPair,
    roles: BTreeMap<Address, &'static str>,
    steps: Vec<Value>,
    now: u64,
}

impl Scenario {
    fn new(name: &'static str, about: &'static str) -> Scenario {
        let mut world = World::new(params());
        let proxy_key = keypair_from_seed(&[7; 32]).unwrap();
        let stranger_key = keypair_from_seed(&[9; 32]).unwrap();
        let mut roles = BTreeMap::new();
        for role in ["proxy_owner", "client_owner", "worker_owner", "stranger"] {
            let a = Address::wallet(role);
            world
                .apply(
                    &Op::Mint {
                        to: a,
                        amount: 1_000 * TON,
                    },
                    0,
                )
                .unwrap();
            roles.insert(a, role);
        }
        let proxy = Address::proxy_contract(&wallet("proxy_owner"), &key_of(&proxy_key), 1);
        roles.insert(proxy, "proxy");
        roles.insert(
            Address::client_contract(&proxy, &wallet("client_owner")),
            "client",
        );
        roles.insert(
            Address::worker_contract(&proxy, &wallet("worker_owner")),
            "worker",
        );
        Scenario {
            name,
            about,
            world,
            proxy_key,
            stranger_key,
            roles,
            steps: Vec::new(),
            now: 1_000,
        }
    }

    fn addr(&self, role: &str) -> Address {
        *self
            .roles
            .iter()
            .find(|(_, r)| **r == role)
            .unwrap_or_else(|| panic!("no role {role}"))
            .0
    }

    fn role(&self, a: &Address) -> &'static str {
        self.roles.get(a).copied().unwrap_or("unknown")
    }

    /// A voucher as the vectors describe it, and as the embedded chain takes it.
    fn voucher(
        &self,
        op: VoucherOp,
        contract: &str,
        cumulative: u64,
        signer: &str,
    ) -> (Value, SignedVoucher) {
        let key = match signer {
            "proxy" => &self.proxy_key,
            _ => &self.stranger_key,
        };
        let v = Voucher::new(op, self.addr(contract), cumulative).sign(key);
        let described = json!({"op": op_name(op), "contract": contract, "cumulative": cumulative, "signer": signer});
        (described, v)
    }

    fn wait(&mut self, secs: u64) {
        self.now += secs;
    }

    /// Applies `op`, described as `step` in the vectors, and records what happened.
    fn step(&mut self, mut step: Value, op: Op) {
        let result = self.world.apply(&op, self.now);
        step["now"] = json!(self.now);
        let mut expect = serde_json::Map::new();
        match &result {
            Ok(fx) => {
                expect.insert("error".into(), Value::Null);
                let transfers: Vec<Value> = fx
                    .transfers
                    .iter()
                    .map(|t| {
                        json!({"from": self.role(&t.from), "to": self.role(&t.to),
                               "amount": t.amount, "kind": t.kind})
                    })
                    .collect();
                expect.insert("transfers".into(), json!(transfers));
            }
            Err(e) => {
                expect.insert("error".into(), json!(error_name(e)));
            }
        }
        expect.insert("state".into(), self.state());
        step["expect"] = Value::Object(expect);
        self.world.check_invariants().unwrap();
        self.steps.push(step);
    }

    /// What every deployed contract of the scenario holds after a step.
    fn state(&self) -> Value {
        let mut out = serde_json::Map::new();
        if let Some(p) = self.world.proxies.get(&self.addr("proxy")) {
            out.insert(
                "proxy".into(),
                json!({"state": p.state, "stake": p.stake, "commission": p.commission,
                       "client_deposits": p.client_deposits, "charged": p.charged,
                       "unlock_at": p.unlock_at, "open_clients": p.clients.len(),
                       "open_workers": p.workers.len(), "balance": self.world.balance(&p.address)}),
            );
        }
        if let Some(c) = self.world.clients.get(&self.addr("client")) {
            out.insert(
                "client".into(),
                json!({"state": c.state, "balance": c.balance, "stake": c.stake,
                       "tokens_charged": c.tokens_charged, "unlock_at": c.unlock_at,
                       "registered_nonce": c.registered_nonce,
                       "secret_hash": hex(&c.secret_hash)}),
            );
        }
        if let Some(w) = self.world.workers.get(&self.addr("worker")) {
            out.insert(
                "worker".into(),
                json!({"state": w.state, "tokens_paid": w.tokens_paid}),
            );
        }
        Value::Object(out)
    }

    fn finish(self) -> Value {
        assert_eq!(
            self.world.total(),
            u128::from(self.world.minted),
            "{}: coins conserved",
            self.name
        );
        json!({"name": self.name, "about": self.about, "steps": self.steps})
    }

    // The operations, by role.

    fn deploy_proxy(&mut self, stake: u64) {
        let op = Op::DeployProxy {
            owner: self.addr("proxy_owner"),
            key: key_of(&self.proxy_key),
            params_version: 1,
            stake,
        };
        self.step(
            json!({"op": "deploy_proxy", "sender": "proxy_owner", "value": stake}),
            op,
        );
    }

    fn deploy_client(&mut self, deposit: u64) {
        let op = Op::DeployClient {
            owner: self.addr("client_owner"),
            proxy: self.addr("proxy"),
            deposit,
        };
        self.step(
            json!({"op": "deploy_client", "sender": "client_owner", "value": deposit}),
            op,
        );
    }

    fn deploy_worker(&mut self) {
        let op = Op::DeployWorker {
            owner: self.addr("worker_owner"),
            proxy: self.addr("proxy"),
        };
        self.step(json!({"op": "deploy_worker", "sender": "worker_owner"}), op);
    }

    fn client_top_up(&mut self, sender: &str, amount: u64) {
        let op = Op::ClientTopUp {
            sender: self.addr(sender),
            client: self.addr("client"),
            amount,
        };
        self.step(
            json!({"op": "client_top_up", "sender": sender, "value": amount}),
            op,
        );
    }

    fn client_withdraw(&mut self, sender: &str) {
        let op = Op::ClientWithdraw {
            sender: self.addr(sender),
            client: self.addr("client"),
        };
        self.step(json!({"op": "client_withdraw", "sender": sender}), op);
    }

    fn client_request_close(&mut self, sender: &str) {
        let op = Op::ClientRequestClose {
            sender: self.addr(sender),
            client: self.addr("client"),
        };
        self.step(json!({"op": "client_request_close", "sender": sender}), op);
    }

    fn client_increase_stake(&mut self, sender: &str, stake: u64) {
        let op = Op::ClientIncreaseStake {
            sender: self.addr(sender),
            client: self.addr("client"),
            stake,
        };
        self.step(
            json!({"op": "client_increase_stake", "sender": sender, "stake": stake}),
            op,
        );
    }

    fn client_set_secret_hash(&mut self, sender: &str, hash: [u8; 32]) {
        let op = Op::ClientSetSecretHash {
            sender: self.addr(sender),
            client: self.addr("client"),
            hash,
        };
        self.step(
            json!({"op": "client_set_secret_hash", "sender": sender, "hash": hex(&hash)}),
            op,
        );
    }

    fn client_register(&mut self, sender: &str, nonce: u64) {
        let op = Op::ClientRegister {
            sender: self.addr(sender),
            client: self.addr("client"),
            nonce,
        };
        self.step(
            json!({"op": "client_register", "sender": sender, "nonce": nonce}),
            op,
        );
    }

    /// A voucher submitted by `sender` to `target` (normally the contract it names).
    fn submit(
        &mut self,
        sender: &str,
        target: &str,
        op: VoucherOp,
        contract: &str,
        cumulative: u64,
        signer: &str,
    ) {
        self.submit_as(sender, target, op, op, contract, cumulative, signer);
    }

    /// A voucher for `op` sent in the message of `message` (they differ only in tests of a
    /// voucher signed for another operation).
    #[allow(clippy::too_many_arguments)]
    fn submit_as(
        &mut self,
        sender: &str,
        target: &str,
        message: VoucherOp,
        op: VoucherOp,
        contract: &str,
        cumulative: u64,
        signer: &str,
    ) {
        let (described, voucher) = self.voucher(op, contract, cumulative, signer);
        let at = self.addr(target);
        let (name, op) = match message {
            VoucherOp::ClientCharge => (
                "client_charge",
                Op::ClientCharge {
                    client: at,
                    voucher,
                },
            ),
            VoucherOp::ClientGrantRefund => (
                "client_grant_refund",
                Op::ClientGrantRefund {
                    client: at,
                    voucher,
                },
            ),
            VoucherOp::WorkerPayout => (
                "worker_payout",
                Op::WorkerPayout {
                    worker: at,
                    voucher,
                },
            ),
            VoucherOp::WorkerLastPayout => (
                "worker_last_payout",
                Op::WorkerLastPayout {
                    worker: at,
                    voucher,
                },
            ),
        };
        self.step(
            json!({"op": name, "sender": sender, "target": target, "voucher": described}),
            op,
        );
    }

    fn proxy_op(&mut self, name: &'static str, sender: &str) {
        let (s, p) = (self.addr(sender), self.addr("proxy"));
        let op = match name {
            "proxy_withdraw" => Op::ProxyWithdraw {
                sender: s,
                proxy: p,
            },
            "proxy_request_close" => Op::ProxyRequestClose {
                sender: s,
                proxy: p,
            },
            "proxy_complete_close" => Op::ProxyCompleteClose {
                sender: s,
                proxy: p,
            },
            _ => unreachable!(),
        };
        self.step(json!({"op": name, "sender": sender}), op);
    }

    fn proxy_increase_stake(&mut self, sender: &str, amount: u64) {
        let op = Op::ProxyIncreaseStake {
            sender: self.addr(sender),
            proxy: self.addr("proxy"),
            amount,
        };
        self.step(
            json!({"op": "proxy_increase_stake", "sender": sender, "value": amount}),
            op,
        );
    }
}

fn wallet(role: &str) -> Address {
    Address::wallet(role)
}

fn key_of(k: &Ed25519KeyPair) -> PublicKey {
    public_key(k)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn op_name(op: VoucherOp) -> &'static str {
    match op {
        VoucherOp::ClientCharge => "client_charge",
        VoucherOp::ClientGrantRefund => "client_grant_refund",
        VoucherOp::WorkerPayout => "worker_payout",
        VoucherOp::WorkerLastPayout => "worker_last_payout",
    }
}

/// A stable snake_case name of an error's kind (its variant), e.g. `stale_voucher`.
fn error_name(e: &LedgerError) -> String {
    let debug = format!("{e:?}");
    let variant = debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn client_lifecycle() -> Value {
    use VoucherOp::*;
    let mut s = Scenario::new(
        "client_lifecycle",
        "deploy, top up, charges (and refused vouchers), withdraw above stake, two-phase close with a forced refund",
    );
    s.deploy_proxy(2 * TON);
    s.deploy_client(3 * TON);
    s.client_top_up("stranger", TON);
    s.client_top_up("client_owner", 0);
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        1_000_000,
        "proxy",
    );
    s.submit(
        "client_owner",
        "client",
        ClientCharge,
        "client",
        1_000_000,
        "proxy",
    );
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        999_999,
        "proxy",
    );
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        2_000_000,
        "stranger",
    );
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "worker",
        2_000_000,
        "proxy",
    );
    s.submit_as(
        "proxy_owner",
        "client",
        ClientCharge,
        ClientGrantRefund,
        "client",
        2_000_000,
        "proxy",
    );
    s.submit(
        "client_owner",
        "client",
        ClientCharge,
        "client",
        2_500_000,
        "proxy",
    );
    s.client_withdraw("stranger");
    s.client_withdraw("client_owner");
    s.client_withdraw("client_owner");
    s.client_increase_stake("client_owner", TON);
    s.client_increase_stake("stranger", 2 * TON);
    s.client_increase_stake("client_owner", 2 * TON);
    s.client_set_secret_hash("client_owner", [0x5a; 32]);
    s.client_set_secret_hash("stranger", [0x11; 32]);
    s.client_register("client_owner", 77);
    s.client_register("stranger", 78);
    s.client_request_close("stranger");
    s.client_request_close("client_owner");
    s.client_top_up("client_owner", TON);
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        3_000_000,
        "proxy",
    );
    s.wait(299);
    s.client_request_close("client_owner");
    s.wait(1);
    s.client_request_close("client_owner");
    s.client_request_close("client_owner");
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        4_000_000,
        "proxy",
    );
    s.finish()
}

fn cooperative_close() -> Value {
    use VoucherOp::*;
    let mut s = Scenario::new(
        "cooperative_close",
        "the proxy charges what it served and grants the refund of a closing client; a charge larger than the balance is floored at it",
    );
    s.deploy_proxy(2 * TON);
    s.deploy_client(TON + TON / 2);
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        10_000_000,
        "proxy",
    );
    s.client_request_close("client_owner");
    s.submit(
        "proxy_owner",
        "client",
        ClientGrantRefund,
        "client",
        9_000_000,
        "proxy",
    );
    s.submit(
        "proxy_owner",
        "client",
        ClientGrantRefund,
        "client",
        60_000_000,
        "stranger",
    );
    // Far beyond the balance: floored at what is left.
    s.submit(
        "proxy_owner",
        "client",
        ClientGrantRefund,
        "client",
        90_000_000,
        "proxy",
    );
    s.submit(
        "proxy_owner",
        "client",
        ClientGrantRefund,
        "client",
        95_000_000,
        "proxy",
    );
    s.finish()
}

fn worker_payouts() -> Value {
    use VoucherOp::*;
    let mut s = Scenario::new(
        "worker_payouts",
        "payouts split into the worker's part and the proxy's commission, refused vouchers, the last payout closes the worker contract",
    );
    s.deploy_proxy(2 * TON);
    s.deploy_client(3 * TON);
    s.deploy_worker();
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        50_000_000,
        "proxy",
    );
    s.submit(
        "worker_owner",
        "worker",
        WorkerPayout,
        "worker",
        10_000_000,
        "proxy",
    );
    s.submit(
        "stranger",
        "worker",
        WorkerPayout,
        "worker",
        20_000_000,
        "proxy",
    );
    s.submit(
        "worker_owner",
        "worker",
        WorkerPayout,
        "worker",
        20_000_000,
        "proxy",
    );
    s.submit(
        "worker_owner",
        "worker",
        WorkerPayout,
        "worker",
        20_000_000,
        "stranger",
    );
    s.submit(
        "worker_owner",
        "worker",
        WorkerPayout,
        "client",
        30_000_000,
        "proxy",
    );
    s.submit_as(
        "worker_owner",
        "worker",
        WorkerPayout,
        WorkerLastPayout,
        "worker",
        30_000_000,
        "proxy",
    );
    // Paying for usage not yet charged draws on the proxy's stake.
    s.submit(
        "worker_owner",
        "worker",
        WorkerPayout,
        "worker",
        80_000_000,
        "proxy",
    );
    s.submit(
        "worker_owner",
        "worker",
        WorkerLastPayout,
        "worker",
        80_000_000,
        "proxy",
    );
    s.submit(
        "worker_owner",
        "worker",
        WorkerPayout,
        "worker",
        90_000_000,
        "proxy",
    );
    s.proxy_op("proxy_withdraw", "stranger");
    s.proxy_op("proxy_withdraw", "proxy_owner");
    s.proxy_op("proxy_withdraw", "proxy_owner");
    s.finish()
}

fn proxy_close() -> Value {
    use VoucherOp::*;
    let mut s = Scenario::new(
        "proxy_close",
        "a proxy closes only after its clients are refunded and workers paid, and after its delay",
    );
    s.deploy_proxy(TON);
    s.deploy_proxy(2 * TON);
    s.proxy_increase_stake("proxy_owner", TON);
    s.deploy_client(2 * TON);
    s.deploy_worker();
    s.submit(
        "proxy_owner",
        "client",
        ClientCharge,
        "client",
        5_000_000,
        "proxy",
    );
    s.proxy_op("proxy_request_close", "stranger");
    s.proxy_op("proxy_request_close", "proxy_owner");
    s.deploy_worker();
    s.proxy_op("proxy_complete_close", "proxy_owner");
    s.wait(600);
    s.proxy_op("proxy_complete_close", "proxy_owner");
    s.submit(
        "proxy_owner",
        "client",
        ClientGrantRefund,
        "client",
        5_000_000,
        "proxy",
    );
    s.proxy_op("proxy_complete_close", "proxy_owner");
    s.submit(
        "worker_owner",
        "worker",
        WorkerLastPayout,
        "worker",
        5_000_000,
        "proxy",
    );
    s.proxy_op("proxy_complete_close", "stranger");
    s.proxy_op("proxy_complete_close", "proxy_owner");
    s.proxy_op("proxy_withdraw", "proxy_owner");
    s.finish()
}

#[test]
fn scenario_vectors_match_the_checked_in_file() {
    let p = params();
    let vectors = json!({
        "about": "Generated by crates/ledger/tests/vectors.rs from the embedded chain's contract state machines; replayed by contracts/tests against the Tolk contracts. Do not edit by hand.",
        "params": {
            "price_per_token": p.price_per_token,
            "worker_fee_per_token": p.worker_fee_per_token,
            "prompt_multiplier": p.prompt_multiplier,
            "cached_multiplier": p.cached_multiplier,
            "completion_multiplier": p.completion_multiplier,
            "reasoning_multiplier": p.reasoning_multiplier,
            "min_client_stake": p.min_client_stake,
            "min_proxy_stake": p.min_proxy_stake,
            "client_delay_before_close_secs": p.client_delay_before_close_secs,
            "proxy_delay_before_close_secs": p.proxy_delay_before_close_secs,
        },
        "scenarios": [client_lifecycle(), cooperative_close(), worker_payouts(), proxy_close()],
    });
    let text = serde_json::to_string_pretty(&sorted(vectors)).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contracts/vectors/scenarios.json");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == text,
        "{} is out of date with the contract state machines; regenerate it with \
         `UPDATE_VECTORS=1 cargo test -p cocoon-ledger --test vectors` and make the Tolk \
         contracts agree",
        path.display()
    );
}

#[test]
fn every_operation_and_every_refusal_kind_is_covered() {
    let all = [
        client_lifecycle(),
        cooperative_close(),
        worker_payouts(),
        proxy_close(),
    ];
    let steps: Vec<&Value> = all
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .collect();
    let ops: std::collections::BTreeSet<&str> =
        steps.iter().map(|s| s["op"].as_str().unwrap()).collect();
    let errors: std::collections::BTreeSet<&str> = steps
        .iter()
        .filter_map(|s| s["expect"]["error"].as_str())
        .collect();
    for op in [
        "deploy_proxy",
        "deploy_client",
        "deploy_worker",
        "client_top_up",
        "client_withdraw",
        "client_request_close",
        "client_increase_stake",
        "client_set_secret_hash",
        "client_register",
        "client_charge",
        "client_grant_refund",
        "worker_payout",
        "worker_last_payout",
        "proxy_withdraw",
        "proxy_request_close",
        "proxy_complete_close",
        "proxy_increase_stake",
    ] {
        assert!(ops.contains(op), "no step runs {op}");
    }
    for e in [
        "bad_signature",
        "wrong_contract",
        "wrong_voucher_op",
        "stale_voucher",
        "zero_amount",
        "nothing_to_withdraw",
        "stake_too_low",
        "wrong_state",
        "not_unlocked",
        "not_owner",
        "proxy_has_open_contracts",
    ] {
        assert!(
            errors.contains(e),
            "no step is refused with {e}: {errors:?}"
        );
    }
}
