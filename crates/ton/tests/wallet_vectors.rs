//! Node wallet messages for the sandbox (`contracts/test/wallet.test.js`): external messages
//! this crate signs for a v4r2 and a v5r1 wallet, deploying the wallet and sending a Cocoon
//! message. The sandbox runs them through the real wallet code and checks the transfer landed,
//! so what the adapter sends is proven on the TVM, not only parsed.
//!
//! `contracts/vectors/wallet-messages.json` is checked in; this test fails when the adapter
//! would now sign something else (`UPDATE_VECTORS=1 cargo test -p cocoon-ton --test
//! wallet_vectors` rewrites it).

#[path = "../../../tests/vectors/sorted_json.rs"]
mod sorted_json;
use sorted_json::sorted;

use base64::Engine;
use cocoon_ton::messages;
use cocoon_ton::parse_address;
use cocoon_ton::wallet::{NodeWallet, Outgoing, WalletVersion};
use serde_json::json;

#[test]
fn wallet_messages_match_the_checked_in_vectors() {
    let to = "0:1111111111111111111111111111111111111111111111111111111111111111";
    let body = messages::client_top_up(9, 5_000_000).unwrap();
    let mut out = serde_json::Map::new();
    for (name, version) in [("v4r2", WalletVersion::V4R2), ("v5r1", WalletVersion::V5R1)] {
        let wallet = NodeWallet::from_seed(&[5; 32], version).unwrap();
        let message = Outgoing {
            to: parse_address(to).unwrap(),
            value: 100_000_000,
            bounce: false,
            body: body.clone(),
            state_init: None,
        };
        let deploy_and_send = wallet
            .transfer(0, 1_900_000_000, std::slice::from_ref(&message), true)
            .unwrap();
        let second = wallet
            .transfer(1, 1_900_000_000, &[message], false)
            .unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        out.insert(
            name.into(),
            json!({
                "address": wallet.address().to_hex(),
                "deploy_and_send": b64(&deploy_and_send),
                "second_send": b64(&second),
            }),
        );
    }
    let vectors = json!({
        "about": "Written by crates/ton/tests/wallet_vectors.rs (the Rust adapter's wallet messages); run through the real wallet code by contracts/test/wallet.test.js. Do not edit by hand.",
        "to": to,
        "value": "100000000",
        "body_hash": hex::encode(body.cell_hash().as_slice()),
        "expire_at": 1_900_000_000u32,
        "wallets": out,
    });
    let text = serde_json::to_string_pretty(&sorted(vectors)).unwrap() + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/vectors/wallet-messages.json"
    );
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(path, &text).unwrap();
        return;
    }
    assert!(
        std::fs::read_to_string(path).unwrap_or_default() == text,
        "{path} is stale: UPDATE_VECTORS=1 cargo test -p cocoon-ton --test wallet_vectors"
    );
}
