//! Deploying the root through a TON HTTP API (a local server answering like toncenter): the
//! message the wallet sends carries the root's code and state init (whose hash is the address
//! the sandbox computes), from the wallet's current seqno; nothing is sent when the root is
//! already active, and a wallet without funds is refused before anything is sent.

mod common;

use cocoon_ton::api::{ApiConfig, TonApi};
use cocoon_ton::deploy::{deploy_root, root_state_init, Codes, Deployed};
use cocoon_ton::messages::{from_boc, Params};
use cocoon_ton::parse_address;
use cocoon_ton::wallet::{NodeWallet, WalletVersion};
use common::{failure, recorded, serve, Canned};
use std::time::Duration;
use tonlib_core::cell::ArcCell;

fn params() -> Params {
    Params::try_from(&cocoon_ledger::RootParams::default()).unwrap()
}

fn account(state: &str, balance: u64) -> Canned {
    let code = if state == "active" {
        "te6cckEBAQEAAgAAAEysuc0="
    } else {
        ""
    };
    failure(
        200,
        None,
        &format!(
            r#"{{"ok":true,"result":{{"@type":"raw.fullAccountState","balance":"{balance}","code":"{code}","data":"{code}","last_transaction_id":{{"lt":"0","hash":""}},"state":"{state}"}}}}"#
        ),
    )
}

fn api(url: &str) -> TonApi {
    let mut c = ApiConfig::new(url, None);
    c.requests_per_second = 1000.0;
    c.backoff = Duration::from_millis(5);
    TonApi::new(c).unwrap()
}

/// Every cell hash reachable from `root`.
fn hashes(root: &ArcCell, out: &mut Vec<String>) {
    out.push(hex::encode(root.cell_hash().as_slice()));
    for r in root.references() {
        hashes(r, out);
    }
}

#[tokio::test]
async fn the_deploy_message_carries_the_roots_state_init() {
    let (server, url) = serve().await;
    let wallet = NodeWallet::from_seed(&[5; 32], WalletVersion::V4R2).unwrap();
    let owner = parse_address("0:5555555555555555555555555555555555555555555555555555555555555555")
        .unwrap();
    server.then(
        "getAddressInformation",
        vec![
            account("uninitialized", 0),      // the root: not there yet
            account("active", 3_000_000_000), // the wallet
            account("uninitialized", 0),      // the root, first poll
            account("active", 500_000_000),   // the root, deployed
        ],
    );
    server.then("runGetMethod", vec![recorded("runGetMethod-seqno")]);
    server.then("sendBocReturnHash", vec![recorded("sendBocReturnHash")]);
    let mut log = Vec::new();
    let done = deploy_root(
        &api(&url),
        &wallet,
        &owner,
        &params(),
        500_000_000,
        Duration::from_secs(20),
        |line| log.push(line.to_string()),
    )
    .await
    .unwrap();
    let codes = Codes::embedded().unwrap();
    let (init, address) = root_state_init(&owner, &params(), &codes).unwrap();
    assert_eq!(
        done,
        Deployed::Sent {
            address: address.clone(),
            message_hash: "Qk9DaGFzaEJPQ2hhc2hCT0NoYXNoQk9DaGFzaEJPQ2g=".into()
        }
    );
    assert!(log.iter().any(|l| l.contains("seqno 17")), "{log:?}");
    // The sent external message holds the root's state init and code.
    let sent = server
        .hits()
        .into_iter()
        .find(|h| h.method == "sendBocReturnHash")
        .unwrap();
    let boc: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(boc["boc"].as_str().unwrap())
        .unwrap();
    let mut all = Vec::new();
    hashes(&from_boc(&bytes).unwrap(), &mut all);
    for (what, hash) in [
        ("state init", init.cell_hash()),
        ("root code", codes.root.cell_hash()),
    ] {
        assert!(
            all.contains(&hex::encode(hash.as_slice())),
            "the message carries the {what}"
        );
    }
    assert!(address.to_hex().starts_with("0:"));
}

#[tokio::test]
async fn an_active_root_is_not_deployed_again_and_a_poor_wallet_is_refused() {
    let (server, url) = serve().await;
    let wallet = NodeWallet::from_seed(&[5; 32], WalletVersion::V4R2).unwrap();
    let owner = wallet.address().clone();
    server.then(
        "getAddressInformation",
        vec![
            account("active", 1),             // root already there
            account("uninitialized", 0),      // second run: no root
            account("uninitialized", 10_000), // and a wallet with dust
        ],
    );
    let api = api(&url);
    let first = deploy_root(
        &api,
        &wallet,
        &owner,
        &params(),
        500_000_000,
        Duration::from_secs(1),
        |_| {},
    )
    .await
    .unwrap();
    assert!(matches!(first, Deployed::AlreadyActive { .. }));
    let e = deploy_root(
        &api,
        &wallet,
        &owner,
        &params(),
        500_000_000,
        Duration::from_secs(1),
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("holds 10000 nanoTON"), "{e}");
    assert!(
        server
            .hits()
            .iter()
            .all(|h| h.method != "sendBocReturnHash"),
        "nothing was sent"
    );
}
