//! The CLI against `cocoon chain serve` (an in-process `http::serve` of a database): the
//! same commands over `--chain URL`, and refusals that arrive as text still get their hint.

mod common;

use cocoon_chain::ledger::{Address, VoucherOp};
use cocoon_chain::{Chain, Clock, DbChain, Registry};
use common::*;
use std::net::SocketAddr;
use std::sync::Arc;

/// Serves `chain` on its own runtime thread (the test thread blocks in sync calls).
fn start_server(chain: Arc<dyn Chain>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            cocoon_chain::http::serve(chain, listener, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

fn cli(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let all: Vec<&str> = ["--chain", url].iter().chain(args).copied().collect();
    let cli = parse(&all).unwrap();
    cocoon_wallet::exec(&cli.chain, &cli.cmd)
}

#[test]
fn commands_work_over_a_chain_server() {
    let dir = temp_dir("remote");
    let db = DbChain::open(
        &dir.join("chain.db"),
        Registry::default(),
        Clock::manual(100),
    )
    .unwrap();
    let url = format!("http://{}", start_server(db.clone()));
    cli(&url, &["faucet", "alice", "5ton"]).unwrap();
    cli(&url, &["faucet", "carol", "5ton"]).unwrap();
    let proxy = deploy_proxy(&*db, "alice", 2 * TON);
    let p = proxy.to_hex();
    let out = cli(
        &url,
        &[
            "client", "deploy", "--owner", "carol", "--proxy", &p, "3ton",
        ],
    )
    .unwrap();
    assert!(
        out.contains(&format!(
            "carol (wallet {}): {}",
            Address::wallet("carol"),
            nano(2 * TON)
        )),
        "{out}"
    );
    let client = Address::client_contract(&proxy, &Address::wallet("carol"));
    let v = voucher(PROXY_SEED, VoucherOp::ClientCharge, client, 1_000);
    cli(&url, &["client", "charge", "--voucher", &v]).unwrap();
    // The server sends the refusal as text: the hint is found all the same.
    let e = format!(
        "{:#}",
        cli(&url, &["client", "charge", "--voucher", &v]).unwrap_err()
    );
    assert!(e.contains(&format!("client contract {client}")), "{e}");
    assert!(
        e.contains("stale voucher") && e.contains("newer voucher"),
        "{e}"
    );
    let out = cli(
        &url,
        &["client", "close", "--owner", "carol", "--proxy", &p],
    )
    .unwrap();
    assert!(out.contains("closing started"), "{out}");
    let out = cli(&url, &["advance", "300"]).unwrap();
    assert!(out.contains("chain time is now 400"), "{out}");
    let out = cli(
        &url,
        &["client", "close", "--owner", "carol", "--proxy", &p],
    )
    .unwrap();
    assert!(out.contains("refunded by force"), "{out}");
    let a: serde_json::Value =
        serde_json::from_str(&cli(&url, &["audit", "--json", "--check"]).unwrap()).unwrap();
    assert_eq!(a["ok"], true, "{a:#}");
    assert_eq!(a["proxies"][0]["client_paid"], 20_000);
    let out = cli(&url, &["balances"]).unwrap();
    assert!(out.contains("invariants: ok"), "{out}");
}
