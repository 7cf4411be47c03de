//! `TonChain` against a local TON network (the Tolk contracts in @ton/sandbox, behind the
//! toncenter v2 API, over real HTTP): every money flow a node drives — deploying proxy, client
//! and worker contracts, top-ups, charges and payouts with proxy-signed vouchers, anchors,
//! closing — goes through the real contracts from real wallet messages, and the node's view
//! (`world()`, `registry()`) reads their storage back.

mod sandbox;

use cocoon_chain::{Chain, ChainError};
use cocoon_ledger::{
    keypair_from_seed, public_key, Address, ContractState, Op, RootParams, SessionHash,
    SignatureFormat, SignedAnchor, Voucher, VoucherOp,
};
use cocoon_ton::chain::{TonChain, TonChainConfig};
use cocoon_ton::state::{from_ton, to_ton};
use cocoon_ton::wallet::{NodeWallet, WalletVersion};
use sandbox::Sandbox;
use std::sync::Arc;
use std::time::Duration;

const TON: u64 = 1_000_000_000;

/// A node on the sandbox with the wallet of `seed` (funded with 100 TON).
fn node(sb: &Sandbox, root: &cocoon_ton::TonAddress, seed: u8) -> Arc<TonChain> {
    let wallet = NodeWallet::from_seed(&[seed; 32], WalletVersion::V4R2).unwrap();
    sb.fund(&wallet.address().to_hex(), 100 * TON);
    let mut cfg = TonChainConfig::new(sb.api_config(), root.clone(), [seed; 32]);
    cfg.poll = Duration::from_millis(10);
    cfg.confirm_timeout = Duration::from_secs(20);
    cfg.world_ttl = Duration::ZERO;
    // Tiny pages: finding each op's transactions pages back through the contract's history.
    cfg.tx_page = 2;
    cfg.policy.allow_sim = true;
    TonChain::connect(cfg).unwrap()
}

fn me(chain: &TonChain) -> Address {
    from_ton(chain.wallet_address()).unwrap()
}

fn rejected(e: ChainError, containing: &str) {
    match &e {
        ChainError::Rejected { reason, .. } if reason.contains(containing) => {}
        other => panic!("expected a refusal with {containing:?}, got {other:?}"),
    }
}

#[test]
fn a_whole_money_flow_runs_on_the_tolk_contracts_through_the_api() {
    let sb = Sandbox::start();
    let (root, _) = sb.deploy_root(1);
    let proxy_node = node(&sb, &root, 2);
    let client_node = node(&sb, &root, 3);
    let worker_node = node(&sb, &root, 4);
    let registry = proxy_node.registry();
    assert_eq!(registry.params, RootParams::default());
    assert!(registry.allow_sim, "policy comes from the node's config");
    assert_eq!(proxy_node.signature_format(), SignatureFormat::TonCell);
    let price = registry.params.price_per_token;

    // The proxy deploys its contract through the root, at the address it derives itself.
    let key = keypair_from_seed(&[9; 32]).unwrap();
    let key_pub = public_key(&key);
    let proxy_owner = me(&proxy_node);
    let proxy = proxy_node
        .proxy_contract(&proxy_owner, &key_pub, registry.version)
        .unwrap();
    proxy_node
        .submit(Op::DeployProxy {
            owner: proxy_owner,
            key: key_pub,
            params_version: registry.version,
            stake: 10 * TON,
        })
        .unwrap();
    let w = proxy_node.world().unwrap();
    let p = &w.proxies[&proxy];
    assert_eq!(
        (p.state, p.stake, p.owner),
        (ContractState::Open, 10 * TON, proxy_owner)
    );
    assert_eq!(p.key, key_pub);

    // The client deploys its contract through the proxy with a 5 TON deposit and tops up.
    let client_owner = me(&client_node);
    let client = client_node.client_contract(&proxy, &client_owner).unwrap();
    assert_eq!(
        client,
        proxy_node.client_contract(&proxy, &client_owner).unwrap(),
        "every node derives the same address"
    );
    client_node
        .submit(Op::DeployClient {
            owner: client_owner,
            proxy,
            deposit: 5 * TON,
        })
        .unwrap();
    client_node
        .submit(Op::ClientTopUp {
            sender: client_owner,
            client,
            amount: 2 * TON,
        })
        .unwrap();
    client_node
        .submit(Op::ClientSetSecretHash {
            sender: client_owner,
            client,
            hash: [7; 32],
        })
        .unwrap();
    let c = client_node.world().unwrap().clients[&client].clone();
    assert_eq!(
        (c.state, c.balance, c.owner, c.proxy),
        (ContractState::Open, 7 * TON, client_owner, proxy)
    );
    assert_eq!((c.stake, c.secret_hash), (TON, [7; 32]));

    // The proxy charges with a voucher signed over the cell hash; the same voucher again is
    // stale, and one signed in the ledger's format does not verify on TON.
    let charge = Voucher::new(VoucherOp::ClientCharge, client, 1_000);
    let signed = charge.sign_in(SignatureFormat::TonCell, &key);
    proxy_node
        .submit(Op::ClientCharge {
            client,
            voucher: signed,
        })
        .unwrap();
    let w = proxy_node.world().unwrap();
    assert_eq!(w.clients[&client].tokens_charged, 1_000);
    assert_eq!(w.clients[&client].balance, 7 * TON - 1_000 * price);
    assert_eq!(w.proxies[&proxy].charged, 1_000 * price);
    assert_eq!(w.proxies[&proxy].clients.len(), 1);
    let again = proxy_node.submit(Op::ClientCharge {
        client,
        voucher: signed,
    });
    assert!(again.as_ref().unwrap_err().is_stale_voucher(), "{again:?}");
    let ledger_signed = Voucher::new(VoucherOp::ClientCharge, client, 2_000).sign(&key);
    rejected(
        client_node
            .submit(Op::ClientCharge {
                client,
                voucher: ledger_signed,
            })
            .unwrap_err(),
        "bad signature",
    );

    // The worker deploys its own contract and is paid by voucher: its owner wallet gets the
    // worker part, the rest is the proxy's commission.
    let worker_owner = me(&worker_node);
    let worker = worker_node.worker_contract(&proxy, &worker_owner).unwrap();
    worker_node
        .submit(Op::DeployWorker {
            owner: worker_owner,
            proxy,
        })
        .unwrap();
    let before = worker_node.balance(&worker_owner).unwrap();
    let payout =
        Voucher::new(VoucherOp::WorkerPayout, worker, 500).sign_in(SignatureFormat::TonCell, &key);
    worker_node
        .submit(Op::WorkerPayout {
            worker,
            voucher: payout,
        })
        .unwrap();
    let w = worker_node.world().unwrap();
    assert_eq!(w.workers[&worker].tokens_paid, 500);
    let fee = registry.params.worker_fee_per_token;
    assert_eq!(
        w.proxies[&proxy].charged,
        500 * price,
        "the payout came from charged"
    );
    assert_eq!(w.proxies[&proxy].commission, 500 * (price - fee));
    let after = worker_node.balance(&worker_owner).unwrap();
    let gas = (before + 500 * fee).abs_diff(after);
    assert!(
        gas < 100_000_000,
        "worker part arrived less the gas: {before} → {after}"
    );

    // Anchors: signed over the anchor cell; an older seqno is stale.
    let anchor = SignedAnchor::sign_in(
        SignatureFormat::TonCell,
        &key,
        proxy,
        5,
        SessionHash([3; 32]),
    );
    worker_node.submit(Op::ProxyAnchor { anchor }).unwrap();
    assert_eq!(proxy_node.world().unwrap().proxies[&proxy].anchor_seqno, 5);
    let old = SignedAnchor::sign_in(
        SignatureFormat::TonCell,
        &key,
        proxy,
        4,
        SessionHash([3; 32]),
    );
    assert!(proxy_node
        .submit(Op::ProxyAnchor { anchor: old })
        .unwrap_err()
        .is_stale_anchor());

    // On TON the sender is whoever signs: an op naming another wallet is refused up front.
    let foreign = client_node.submit(Op::ClientWithdraw {
        sender: proxy_owner,
        client,
    });
    assert!(
        matches!(foreign, Err(ChainError::NotOwnWallet(_))),
        "{foreign:?}"
    );
    assert!(client_node.advance(10).is_err());

    // Closing: the client asks and the proxy grants the refund with a closing voucher; the client's remaining balance comes back to its owner
    // (what is above the stake at the request, the stake at the grant).
    let owner_before = client_node.balance(&client_owner).unwrap();
    client_node
        .submit(Op::ClientRequestClose {
            sender: client_owner,
            client,
        })
        .unwrap();
    assert_eq!(
        client_node.world().unwrap().clients[&client].state,
        ContractState::Closing
    );
    let grant = Voucher::new(VoucherOp::ClientGrantRefund, client, 1_000)
        .sign_in(SignatureFormat::TonCell, &key);
    proxy_node
        .submit(Op::ClientGrantRefund {
            client,
            voucher: grant,
        })
        .unwrap();
    let w = client_node.world().unwrap();
    assert_eq!(w.clients[&client].state, ContractState::Closed);
    assert_eq!(w.clients[&client].balance, 0);
    assert_eq!(w.proxies[&proxy].client_deposits, 0);
    let refunded = client_node.balance(&client_owner).unwrap() - owner_before;
    assert!(
        refunded.abs_diff(7 * TON - 1_000 * price) < 2 * 100_000_000,
        "refund {refunded}"
    );

    // The proxy closes: not before its delay (sandbox clock), and not while the worker
    // contract is open; a last payout closes that, then the stake comes home.
    proxy_node
        .submit(Op::ProxyRequestClose {
            sender: proxy_owner,
            proxy,
        })
        .unwrap();
    let complete = || {
        proxy_node.submit(Op::ProxyCompleteClose {
            sender: proxy_owner,
            proxy,
        })
    };
    rejected(complete().unwrap_err(), "close delay has not passed");
    sb.advance(RootParams::default().proxy_delay_before_close_secs + 1);
    rejected(complete().unwrap_err(), "still open");
    let last = Voucher::new(VoucherOp::WorkerLastPayout, worker, 500)
        .sign_in(SignatureFormat::TonCell, &key);
    worker_node
        .submit(Op::WorkerLastPayout {
            worker,
            voucher: last,
        })
        .unwrap();
    let stake_home = proxy_node.balance(&proxy_owner).unwrap();
    complete().unwrap();
    let w = proxy_node.world().unwrap();
    assert!(
        w.workers.is_empty(),
        "the proxy node never named the worker contract"
    );
    let w2 = worker_node.world().unwrap();
    assert_eq!(w2.workers[&worker].state, ContractState::Closed);
    assert_eq!(w.proxies[&proxy].state, ContractState::Closed);
    let home = proxy_node.balance(&proxy_owner).unwrap() - stake_home;
    assert!(
        home > 10 * TON,
        "stake, reserve and commission came home: {home}"
    );

    // The node's own history lists what it submitted.
    let history = proxy_node.history(1, 100).unwrap();
    assert!(matches!(history[0].op, Op::DeployProxy { .. }));
    assert!(to_ton(&proxy).to_hex().starts_with("0:"));
}

#[test]
fn connecting_to_a_missing_root_fails_clearly() {
    let sb = Sandbox::start();
    let nowhere = cocoon_ton::parse_address(
        "0:2222222222222222222222222222222222222222222222222222222222222222",
    )
    .unwrap();
    let mut cfg = TonChainConfig::new(sb.api_config(), nowhere, [5; 32]);
    cfg.poll = Duration::from_millis(10);
    let err = TonChain::connect(cfg).unwrap_err().to_string();
    assert!(err.contains("no root contract"), "{err}");
}
