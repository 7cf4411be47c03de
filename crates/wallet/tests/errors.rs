//! Bad input gets a clear one-line error, never a panic: unknown contracts, bad amounts,
//! forged or misdirected vouchers, mistyped addresses, a missing database or server.

mod common;

use cocoon_chain::ledger::{Address, VoucherOp};
use cocoon_chain::{Chain, Clock, LocalChain, Registry};
use common::*;

fn setup() -> (std::sync::Arc<LocalChain>, Address) {
    let chain = LocalChain::with_clock(Registry::default(), Clock::manual(50));
    ok(&*chain, &["faucet", "alice", "10ton"]);
    ok(&*chain, &["faucet", "carol", "10ton"]);
    let proxy = deploy_proxy(&*chain, "alice", 2 * TON);
    (chain, proxy)
}

#[test]
fn unknown_contracts_are_named() {
    let (chain, proxy) = setup();
    let p = proxy.to_hex();
    let e = err(
        &*chain,
        &["client", "show", "--owner", "nobody", "--proxy", &p],
    );
    assert!(
        e.contains("no client contract of nobody") && e.contains("client deploy"),
        "{e}"
    );
    let e = err(
        &*chain,
        &[
            "client", "top-up", "--owner", "nobody", "--proxy", &p, "1ton",
        ],
    );
    assert!(e.contains("no client contract of nobody"), "{e}");
    let e = err(
        &*chain,
        &["worker", "show", "--owner", "bob", "--proxy", &p],
    );
    assert!(
        e.contains("no worker contract of bob") && e.contains("worker deploy"),
        "{e}"
    );
    let e = err(&*chain, &["proxy", "show", "--proxy", "carol"]);
    assert!(
        e.contains("no proxy contract") && e.contains("balances"),
        "{e}"
    );
    let other = Address::wallet("x").to_hex();
    let e = err(
        &*chain,
        &["proxy", "withdraw", "--owner", "alice", "--proxy", &other],
    );
    assert!(e.contains("no proxy contract"), "{e}");
    let e = err(&*chain, &["show", &p[..40]]);
    assert!(e.contains("40 hex digits, not 64"), "{e}");
}

#[test]
fn bad_amounts_are_refused_by_the_parser() {
    for bad in ["1.5", "abc", "1.0000000001ton", "99999999999ton"] {
        let e = parse(&["faucet", "alice", bad]).unwrap_err().to_string();
        assert!(e.contains("bad amount"), "{bad}: {e}");
    }
    let (chain, proxy) = setup();
    let p = proxy.to_hex();
    let e = err(
        &*chain,
        &[
            "client", "deploy", "--owner", "carol", "--proxy", &p, "11ton",
        ],
    );
    assert!(
        e.contains("insufficient funds") && e.contains("faucet"),
        "{e}"
    );
    let e = err(&*chain, &["transfer", "carol", "alice", "11ton"]);
    assert!(
        e.starts_with("cannot transfer 11000000000 nanoTON (11 TON) from carol"),
        "{e}"
    );
    assert!(e.contains("insufficient funds"), "{e}");
}

#[test]
fn forged_and_misdirected_vouchers_are_refused() {
    let (chain, proxy) = setup();
    let p = proxy.to_hex();
    ok(
        &*chain,
        &[
            "client", "deploy", "--owner", "carol", "--proxy", &p, "5ton",
        ],
    );
    ok(
        &*chain,
        &["worker", "deploy", "--owner", "bob", "--proxy", &p],
    );
    let worker = Address::worker_contract(&proxy, &Address::wallet("bob"));
    let client = Address::client_contract(&proxy, &Address::wallet("carol"));

    let forged = voucher([9; 32], VoucherOp::WorkerPayout, worker, 10);
    let e = err(&*chain, &["worker", "payout", "--voucher", &forged]);
    assert!(e.contains(&format!("worker contract {worker}")), "{e}");
    assert!(
        e.contains("signature does not verify") && e.contains("forged"),
        "{e}"
    );

    let for_client = voucher(PROXY_SEED, VoucherOp::ClientCharge, client, 10);
    let e = err(&*chain, &["worker", "payout", "--voucher", &for_client]);
    assert!(
        e.contains("not a worker contract") && e.contains("client charge"),
        "{e}"
    );
    let for_worker = voucher(PROXY_SEED, VoucherOp::WorkerPayout, worker, 10);
    let e = err(&*chain, &["client", "charge", "--voucher", &for_worker]);
    assert!(
        e.contains("not a client contract") && e.contains("worker payout"),
        "{e}"
    );
    let wrong_op = voucher(PROXY_SEED, VoucherOp::ClientCharge, worker, 10);
    let e = err(&*chain, &["worker", "payout", "--voucher", &wrong_op]);
    assert!(
        e.contains("client_charge voucher cannot pay a worker"),
        "{e}"
    );
    let nowhere = voucher(
        PROXY_SEED,
        VoucherOp::WorkerPayout,
        Address::wallet("z"),
        10,
    );
    let e = err(&*chain, &["worker", "payout", "--voucher", &nowhere]);
    assert!(e.contains("not a worker contract"), "{e}");

    let e = err(&*chain, &["worker", "payout", "--voucher", "{not json"]);
    assert!(e.starts_with("bad voucher") && e.contains("@FILE"), "{e}");
    let e = err(
        &*chain,
        &["worker", "payout", "--voucher", "@/nonexistent/v.json"],
    );
    assert!(e.contains("cannot read voucher file"), "{e}");
    // Nothing changed: the refused ops are not in the history.
    assert_eq!(chain.tip().unwrap().seq, 5);
    chain.world().unwrap().check_invariants().unwrap();
}

#[test]
fn contracts_are_not_wallets() {
    let (chain, proxy) = setup();
    let p = proxy.to_hex();
    let e = err(&*chain, &["transfer", "alice", &p, "1ton"]);
    assert!(
        e.contains("is a proxy contract, not a wallet") && e.contains("proxy stake"),
        "{e}"
    );
    let e = err(&*chain, &["faucet", &p, "1ton"]);
    assert!(e.contains("not a wallet"), "{e}");
    let e = err(
        &*chain,
        &["proxy", "stake", "--proxy", &p, "--from", &p, "1ton"],
    );
    assert!(e.contains("sender") && e.contains("not a wallet"), "{e}");
}

#[test]
fn missing_database_and_server_are_explained() {
    let cli = parse(&["--db", "/nonexistent/chain.db", "balances"]).unwrap();
    let e = format!(
        "{:#}",
        cocoon_wallet::exec(&cli.chain, &cli.cmd).unwrap_err()
    );
    assert!(
        e.contains("no chain database at /nonexistent/chain.db"),
        "{e}"
    );
    assert!(e.contains("cocoon chain serve --db"), "{e}");
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let cli = parse(&["--chain", &url, "balances"]).unwrap();
    let e = format!(
        "{:#}",
        cocoon_wallet::exec(&cli.chain, &cli.cmd).unwrap_err()
    );
    assert!(
        e.contains(&format!("cannot reach the chain at {url}")),
        "{e}"
    );
    // `address` needs no chain at all.
    let cli = parse(&["--chain", &url, "address", "alice"]).unwrap();
    let out = cocoon_wallet::exec(&cli.chain, &cli.cmd).unwrap();
    assert_eq!(out.trim(), Address::wallet("alice").to_hex());
    // --chain and --db exclude each other; either may also follow the subcommand.
    assert!(parse(&["--chain", &url, "--db", "x", "balances"]).is_err());
    assert!(parse(&["client", "show", "--db", "x", "--chain", &url]).is_err());
    let late = parse(&[
        "client", "withdraw", "--owner", "a", "--proxy", "b", "--db", "x",
    ]);
    assert_eq!(late.unwrap().chain.db, Some("x".into()));
    assert_eq!(
        parse(&["balances"]).unwrap().chain,
        cocoon_wallet::ChainArgs::default()
    );
}
