//! The adapter builds exactly the message cells the contracts' sandbox tests send
//! (`contracts/vectors/messages.json`, written by `contracts/scripts/message-fixtures.js` with
//! the builders of `contracts/test/helpers.js`): equal cell hashes, signatures included.

use cocoon_ton::messages::{self, ImageRole, Params, ProxyEntry, VoucherKind};
use cocoon_ton::{parse_address, TonAddress};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;
use tonlib_core::cell::Cell;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contracts/vectors/messages.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixtures file")).unwrap()
}

fn num(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

/// The params the fixtures were built with.
fn params_of(f: &Value) -> Params {
    let p = &f["params"];
    Params {
        price_per_token: num(&p["pricePerToken"]),
        worker_fee_per_token: num(&p["workerFeePerToken"]),
        prompt_multiplier: num(&p["promptMultiplier"]) as u32,
        cached_multiplier: num(&p["cachedMultiplier"]) as u32,
        completion_multiplier: num(&p["completionMultiplier"]) as u32,
        reasoning_multiplier: num(&p["reasoningMultiplier"]) as u32,
        min_client_stake: num(&p["minClientStake"]),
        min_proxy_stake: num(&p["minProxyStake"]),
        client_delay_secs: num(&p["clientDelay"]) as u32,
        proxy_delay_secs: num(&p["proxyDelay"]) as u32,
    }
}

#[test]
fn every_message_matches_the_sandbox_builders() {
    let f = fixtures();
    let inputs = &f["inputs"];
    let seed: [u8; 32] = hex::decode(inputs["proxy_key_seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    assert_eq!(
        hex::encode(key.public_key().as_ref()),
        inputs["proxy_key"].as_str().unwrap(),
        "the same Ed25519 key from the same seed"
    );
    let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
    let addr = |k: &str| -> TonAddress { parse_address(inputs[k].as_str().unwrap()).unwrap() };
    let (proxy, client, worker) = (addr("proxy"), addr("client"), addr("worker"));
    let q = num(&inputs["query_id"]);
    let hash = [0xab; 32];
    let params = params_of(&f);
    let entry = ProxyEntry {
        proxy: proxy.clone(),
        client_endpoint: "127.0.0.1:11002".into(),
        worker_endpoint: "127.0.0.1:11001".into(),
    };
    let built: Vec<(&str, Cell)> = vec![
        (
            "root_deploy_proxy",
            messages::root_deploy_proxy(q, &public, 2_000_000_000).unwrap(),
        ),
        (
            "root_add_image",
            messages::root_add_image(q, ImageRole::Worker, &hash).unwrap(),
        ),
        (
            "root_del_image",
            messages::root_del_image(q, ImageRole::Proxy, &hash).unwrap(),
        ),
        (
            "root_add_model",
            messages::root_add_model(q, &hash).unwrap(),
        ),
        (
            "root_del_model",
            messages::root_del_model(q, &hash).unwrap(),
        ),
        (
            "root_register_proxy",
            messages::root_register_proxy(q, &entry).unwrap(),
        ),
        (
            "root_unregister_proxy",
            messages::root_unregister_proxy(q, 3).unwrap(),
        ),
        (
            "root_update_proxy",
            messages::root_update_proxy(q, 3, &entry).unwrap(),
        ),
        (
            "root_set_params",
            messages::root_set_params(q, &params).unwrap(),
        ),
        (
            "root_change_owner",
            messages::root_change_owner(q, &addr("new_owner")).unwrap(),
        ),
        (
            "proxy_increase_stake",
            messages::proxy_increase_stake(q, 1_000_000_000).unwrap(),
        ),
        ("proxy_withdraw", messages::proxy_withdraw(q).unwrap()),
        (
            "proxy_anchor",
            messages::proxy_anchor(q, &key, &proxy, 42, &hash).unwrap(),
        ),
        (
            "proxy_request_close",
            messages::proxy_request_close(q).unwrap(),
        ),
        (
            "proxy_complete_close",
            messages::proxy_complete_close(q).unwrap(),
        ),
        (
            "deploy_client",
            messages::deploy_client(q, 3_000_000_000).unwrap(),
        ),
        ("deploy_worker", messages::deploy_worker(q).unwrap()),
        (
            "client_top_up",
            messages::client_top_up(q, 1_000_000_000).unwrap(),
        ),
        ("client_withdraw", messages::client_withdraw(q).unwrap()),
        (
            "client_request_close",
            messages::client_request_close(q).unwrap(),
        ),
        (
            "client_increase_stake",
            messages::client_increase_stake(q, 2_000_000_000).unwrap(),
        ),
        (
            "client_set_secret_hash",
            messages::client_set_secret_hash(q, &hash).unwrap(),
        ),
        (
            "client_register",
            messages::client_register(q, 12345).unwrap(),
        ),
        (
            "client_charge_signed",
            messages::signed_voucher(q, &key, VoucherKind::ClientCharge, 1_000_000, &client)
                .unwrap(),
        ),
        (
            "client_grant_refund_signed",
            messages::signed_voucher(q, &key, VoucherKind::ClientGrantRefund, 2_000_000, &client)
                .unwrap(),
        ),
        (
            "worker_payout_signed",
            messages::signed_voucher(q, &key, VoucherKind::WorkerPayout, 3_000_000, &worker)
                .unwrap(),
        ),
        (
            "worker_last_payout_signed",
            messages::signed_voucher(q, &key, VoucherKind::WorkerLastPayout, 4_000_000, &worker)
                .unwrap(),
        ),
    ];
    let expected = f["messages"].as_object().unwrap();
    assert_eq!(built.len(), expected.len(), "every fixture is built");
    for (name, cell) in built {
        let want = &expected[name];
        assert_eq!(
            hex::encode(cell.cell_hash().as_slice()),
            want["hash"].as_str().unwrap(),
            "{name}: the adapter's cell differs from the sandbox tests' cell"
        );
        // And the BOC the JS side wrote parses back to the same cell.
        let boc = base64_decode(want["boc"].as_str().unwrap());
        let parsed = messages::from_boc(&boc).unwrap();
        assert_eq!(parsed.cell_hash(), cell.cell_hash(), "{name}");
        let ours = messages::to_boc(cell.clone()).unwrap();
        assert_eq!(
            messages::from_boc(&ours).unwrap().cell_hash(),
            cell.cell_hash(),
            "{name}"
        );
    }
}

#[test]
fn a_voucher_signature_verifies_over_the_inner_cell_hash_only() {
    let key = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let contract =
        parse_address("0:2222222222222222222222222222222222222222222222222222222222222222")
            .unwrap();
    let msg = messages::signed_voucher(1, &key, VoucherKind::ClientCharge, 5, &contract).unwrap();
    let inner = msg.reference(0).unwrap();
    let sig = &msg.data()[12..76];
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ED25519,
        key.public_key().as_ref(),
    );
    public.verify(inner.cell_hash().as_slice(), sig).unwrap();
    let other = messages::voucher_body(VoucherKind::ClientCharge, 6, &contract).unwrap();
    assert!(public.verify(other.cell_hash().as_slice(), sig).is_err());
}

#[test]
fn oversized_proxy_endpoints_are_refused_clearly() {
    let entry = ProxyEntry {
        proxy: parse_address("0:1111111111111111111111111111111111111111111111111111111111111111")
            .unwrap(),
        client_endpoint: "h".repeat(100),
        worker_endpoint: "w".repeat(100),
    };
    let e = messages::root_register_proxy(1, &entry)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 127"), "{e}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn the_root_deploys_where_the_sandbox_computes_it() {
    let f = fixtures();
    let d = &f["root_deploy"];
    let params = params_of(&f);
    let owner = parse_address(d["owner"].as_str().unwrap()).unwrap();
    let codes = cocoon_ton::deploy::Codes::embedded().unwrap();
    let data = cocoon_ton::deploy::root_data(&owner, &params, &codes).unwrap();
    assert_eq!(
        hex::encode(data.cell_hash().as_slice()),
        d["data_hash"].as_str().unwrap(),
        "the root's initial data"
    );
    let (_, address) = cocoon_ton::deploy::root_state_init(&owner, &params, &codes).unwrap();
    assert_eq!(address.to_hex(), d["address"].as_str().unwrap());
}
