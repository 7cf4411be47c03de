//! The whole money flow through the CLI, on an in-memory chain and on a database file:
//! faucet → proxy → client deposit, charge, withdraw and close (with `advance`) → worker
//! payouts with proxy-signed vouchers → commission withdraw → proxy close; printed balances,
//! the audit's numbers and the world invariant checked at every step that matters.

mod common;

use cocoon_chain::ledger::{Address, VoucherOp};
use cocoon_chain::{Chain, Clock, DbChain, LocalChain, Registry};
use common::*;
use serde_json::Value;

/// A wallet's balance line as `show` prints it.
fn wallet_line(name: &str, n: u64) -> String {
    format!("{name} (wallet {}): {}", Address::wallet(name), nano(n))
}

/// The same for a wallet the command did not name (printed by address only).
fn unnamed_line(name: &str, n: u64) -> String {
    format!("wallet {}: {}", Address::wallet(name), nano(n))
}

fn balance(chain: &dyn Chain, name: &str) -> u64 {
    json(chain, &["show", name])["balance"].as_u64().unwrap()
}

fn assert_invariants(chain: &dyn Chain) {
    chain.world().unwrap().check_invariants().unwrap();
    let b = json(chain, &["balances"]);
    assert_eq!(b["totals"]["invariants_ok"], true, "{b}");
    assert_eq!(
        b["totals"]["wallets"].as_u64().unwrap() + b["totals"]["contracts"].as_u64().unwrap(),
        b["totals"]["minted"].as_u64().unwrap()
    );
}

fn audit_proxy(chain: &dyn Chain) -> Value {
    let a = json(chain, &["audit"]);
    assert_eq!(a["ok"], true, "{a:#}");
    assert_eq!(a["proxies"].as_array().unwrap().len(), 1);
    a["proxies"][0].clone()
}

/// The scenario; returns the proxy contract address.
fn money_flow(chain: &dyn Chain) -> Address {
    // Wallets: alice runs the proxy, carol is a client, bob runs a worker.
    let out = ok(chain, &["faucet", "alice", "10ton"]);
    assert!(out.contains("applied mint"), "{out}");
    assert!(out.contains(&wallet_line("alice", 10 * TON)), "{out}");
    ok(chain, &["faucet", "carol", "20000000000"]);
    assert_eq!(
        ok(chain, &["address", "bob"]).trim(),
        Address::wallet("bob").to_hex()
    );

    let proxy = deploy_proxy(chain, "alice", 2 * TON);
    let p = proxy.to_hex();
    let out = ok(
        chain,
        &["proxy", "stake", "--proxy", &p, "--from", "alice", "1ton"],
    );
    assert!(out.contains(&wallet_line("alice", 7 * TON)), "{out}");
    let shown = json(chain, &["proxy", "show", "--proxy", "alice"]);
    assert_eq!(shown["proxy"]["stake"], 3 * TON);
    assert_invariants(chain);

    // Client: deposit 5 TON, top up 1.5 TON (proxy named by its owner).
    let out = ok(
        chain,
        &[
            "client", "deploy", "--owner", "carol", "--proxy", &p, "5ton",
        ],
    );
    let client = Address::client_contract(&proxy, &Address::wallet("carol"));
    assert!(out.contains(&format!("client contract: {client}")), "{out}");
    assert!(out.contains(&wallet_line("carol", 15 * TON)), "{out}");
    assert!(out.contains("[deposit]"), "{out}");
    let out = ok(
        chain,
        &[
            "client", "top-up", "--owner", "carol", "--proxy", "alice", "1.5ton",
        ],
    );
    assert!(out.contains(&wallet_line("carol", 13_500_000_000)), "{out}");
    let c = json(
        chain,
        &["client", "show", "--owner", "carol", "--proxy", &p],
    );
    assert_eq!(c["client"]["balance"], 6_500_000_000u64);
    assert_eq!(c["client"]["stake"], TON);

    // The proxy charges 100M tokens × 20 nanoTON = 2 TON.
    let charge = voucher(PROXY_SEED, VoucherOp::ClientCharge, client, 100_000_000);
    let out = ok(chain, &["client", "charge", "--voucher", &charge]);
    assert!(out.contains("applied client_charge"), "{out}");
    assert!(out.contains("transfers: none"), "{out}");
    assert_eq!(audit_proxy(chain)["client_paid"], 2 * TON);

    // Worker: payout of 50M tokens (worker 16, commission 4 per token), then 150M by file.
    let out = ok(
        chain,
        &["worker", "deploy", "--owner", "bob", "--proxy", &p],
    );
    let worker = Address::worker_contract(&proxy, &Address::wallet("bob"));
    assert!(out.contains(&format!("worker contract: {worker}")), "{out}");
    let v1 = voucher(PROXY_SEED, VoucherOp::WorkerPayout, worker, 50_000_000);
    let out = ok(chain, &["worker", "payout", "--voucher", &v1]);
    assert!(out.contains(&unnamed_line("bob", 800_000_000)), "{out}");
    assert!(out.contains("[worker_payout]"), "{out}");
    assert!(out.contains("for 50000000 tokens (0 -> 50000000)"), "{out}");
    let file = temp_dir("voucher").join("v2.json");
    let v2 = voucher(PROXY_SEED, VoucherOp::WorkerPayout, worker, 150_000_000);
    std::fs::write(&file, &v2).unwrap();
    let at_file = format!("@{}", file.display());
    let out = ok(chain, &["worker", "payout", "--voucher", &at_file]);
    assert!(out.contains(&unnamed_line("bob", 2_400_000_000)), "{out}");
    // Stale: the same voucher again is refused, naming the contract and what to do.
    let e = err(chain, &["worker", "payout", "--voucher", &at_file]);
    assert!(e.contains(&format!("worker contract {worker}")), "{e}");
    assert!(
        e.contains("stale voucher") && e.contains("newer voucher"),
        "{e}"
    );
    // 150M tokens × 20 = 3 TON paid out of 2 TON charged: 1 TON came from the stake.
    let a = audit_proxy(chain);
    assert_eq!(a["client_paid"], 2 * TON);
    assert_eq!(a["worker_paid"], 2_400_000_000u64);
    assert_eq!(a["commission_earned"], 600_000_000u64);
    assert_eq!(a["paid_from_stake"], TON);
    assert_eq!(a["charged_unpaid"], 0);
    assert_eq!(a["tokens_paid"], 150_000_000u64);
    assert_eq!(a["identity_holds"], true);
    let w = &a["workers"][worker.to_hex()];
    assert_eq!(
        (w["tokens"].as_u64(), w["paid"].as_u64()),
        (Some(150_000_000), Some(2_400_000_000))
    );
    assert_invariants(chain);

    // Client withdraws what is above the stake (6.5 − 2 charged − 1 stake = 3.5 TON).
    let out = ok(
        chain,
        &["client", "withdraw", "--owner", "carol", "--proxy", &p],
    );
    assert!(out.contains("[client_withdraw]"), "{out}");
    assert!(out.contains(&wallet_line("carol", 17 * TON)), "{out}");
    let e = err(
        chain,
        &["client", "withdraw", "--owner", "carol", "--proxy", &p],
    );
    assert!(e.contains("nothing to withdraw"), "{e}");

    // Close: starts closing; too early again; after the delay the stake is forced back.
    let out = ok(
        chain,
        &["client", "close", "--owner", "carol", "--proxy", &p],
    );
    assert!(out.contains("closing started"), "{out}");
    assert!(
        out.contains("unlocks at chain time") && out.contains("(in 300 s)"),
        "{out}"
    );
    let e = err(
        chain,
        &["client", "close", "--owner", "carol", "--proxy", &p],
    );
    assert!(
        e.contains("locked until chain time") && e.contains("advance 300"),
        "{e}"
    );
    let e = err(
        chain,
        &[
            "client", "top-up", "--owner", "carol", "--proxy", &p, "1ton",
        ],
    );
    assert!(e.contains(&format!("client contract {client}")), "{e}");
    assert!(e.contains("Closing") && e.contains("show"), "{e}");
    let out = ok(chain, &["advance", "300"]);
    assert!(out.contains("moved 300 s"), "{out}");
    let out = ok(
        chain,
        &["client", "close", "--owner", "carol", "--proxy", &p],
    );
    assert!(out.contains("refunded by force"), "{out}");
    assert!(out.contains(&wallet_line("carol", 18 * TON)), "{out}");
    let e = err(
        chain,
        &["client", "close", "--owner", "carol", "--proxy", &p],
    );
    assert!(e.contains("already closed"), "{e}");

    // Commission: 0.6 TON to alice; only the owner may withdraw.
    let e = err(
        chain,
        &["proxy", "withdraw", "--owner", "bob", "--proxy", &p],
    );
    assert!(
        e.contains("is not the owner") && e.contains("--owner"),
        "{e}"
    );
    let out = ok(
        chain,
        &["proxy", "withdraw", "--owner", "alice", "--proxy", &p],
    );
    assert!(out.contains("[proxy_withdraw]"), "{out}");
    assert!(out.contains(&wallet_line("alice", 7_600_000_000)), "{out}");

    let a = audit_proxy(chain);
    assert_eq!(a["commission_withdrawn"], 600_000_000u64);
    assert_eq!(a["coins"], 2 * TON, "stake left: 3 − 1 paid out");
    assert_eq!(a["coins_hold"], true);
    assert_eq!(a["pricing_holds"], true);
    assert_invariants(chain);

    // The proxy closes once its worker is last-paid.
    let out = ok(
        chain,
        &["proxy", "close", "--owner", "alice", "--proxy", &p],
    );
    assert!(out.contains("complete the close at chain time"), "{out}");
    let e = err(
        chain,
        &["proxy", "complete-close", "--owner", "alice", "--proxy", &p],
    );
    assert!(e.contains("locked until") && e.contains("advance"), "{e}");
    ok(chain, &["advance", "600"]);
    let e = err(
        chain,
        &["proxy", "complete-close", "--owner", "alice", "--proxy", &p],
    );
    assert!(e.contains("open worker") && e.contains("last-pay"), "{e}");
    let last = voucher(PROXY_SEED, VoucherOp::WorkerLastPayout, worker, 150_000_000);
    let out = ok(chain, &["worker", "payout", "--voucher", &last]);
    assert!(out.contains("applied worker_last_payout"), "{out}");
    let out = ok(
        chain,
        &["proxy", "complete-close", "--owner", "alice", "--proxy", &p],
    );
    assert!(out.contains("[proxy_close]"), "{out}");
    assert!(out.contains(&wallet_line("alice", 9_600_000_000)), "{out}");

    // Final: every coin is back in a wallet and accounted for.
    assert_eq!(balance(chain, "carol"), 18 * TON);
    assert_eq!(balance(chain, "bob"), 2_400_000_000);
    assert_eq!(balance(chain, "alice"), 9_600_000_000);
    let a = audit_proxy(chain);
    assert_eq!(a["close_paid"], 2 * TON);
    assert_eq!(a["coins"], 0);
    assert_eq!(a["client_deposits_in"], 6_500_000_000u64);
    assert_eq!(a["client_refunds_out"], 4_500_000_000u64);
    assert_eq!(a["stake_in"], 3 * TON);
    let text = ok(chain, &["audit"]);
    assert!(text.contains("audit: OK"), "{text}");
    assert!(
        text.contains("2400000000 + 600000000 = 2000000000 - 0 - 0 + 1000000000 -> holds"),
        "{text}"
    );
    let b = ok(
        chain,
        &[
            "balances", "--name", "carol", "--name", "alice", "--name", "bob",
        ],
    );
    assert!(
        b.contains(&format!("  {}", wallet_line("carol", 18 * TON))),
        "{b}"
    );
    assert!(b.contains("minted: 30000000000 nanoTON (30 TON)"), "{b}");
    assert!(b.contains("contracts: 0 nanoTON (0 TON)"), "{b}");
    assert!(b.contains("invariants: ok"), "{b}");
    assert!(
        b.contains(&format!("client contract {client}: balance 0 nanoTON")),
        "{b}"
    );
    assert!(b.contains("closed"), "{b}");
    let show = ok(chain, &["show", "alice"]);
    assert!(
        show.contains(&format!("owns proxy contract {proxy}")),
        "{show}"
    );
    assert_invariants(chain);
    proxy
}

#[test]
fn money_flow_on_a_local_chain() {
    let chain = LocalChain::with_clock(Registry::default(), Clock::manual(1_000));
    money_flow(&*chain);
}

#[test]
fn money_flow_on_a_database_then_reopened_by_the_cli() {
    let dir = temp_dir("flow-db");
    let path = dir.join("chain.db");
    let proxy = {
        let chain = DbChain::open(&path, Registry::default(), Clock::manual(1_000)).unwrap();
        let proxy = money_flow(&*chain);
        // While this process holds the file, the CLI cannot open it: a clear error.
        let args = parse(&["--db", path.to_str().unwrap(), "balances"]).unwrap();
        let e = format!("{:#}", args.chain.open().unwrap_err());
        assert!(e.contains("in use") && e.contains("--chain"), "{e}");
        proxy
    };
    // Released: `--db FILE` opens it, and the history still audits clean.
    let cli = parse(&["--db", path.to_str().unwrap(), "audit", "--json", "--check"]).unwrap();
    let out = cocoon_wallet::exec(&cli.chain, &cli.cmd).unwrap();
    let a: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a["ok"], true, "{a:#}");
    assert_eq!(a["proxies"][0]["proxy"], proxy.to_hex());
    assert_eq!(a["proxies"][0]["worker_paid"], 2_400_000_000u64);
}
