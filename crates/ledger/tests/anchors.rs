//! Proxy anchors and long-auth registration on the contracts.

mod common;

use cocoon_ledger::*;
use common::*;

#[test]
fn anchors_strictly_increase_and_need_the_proxy_key() {
    let mut net = Net::new(&[], 0);
    let hash = SessionHash([9; 32]);
    let a1 = SignedAnchor::sign(&net.key, net.proxy, 1, hash);
    net.apply(Op::ProxyAnchor { anchor: a1 }).unwrap();
    assert_eq!(net.world.proxies[&net.proxy].anchor_seqno, 1);
    assert_eq!(net.world.proxies[&net.proxy].anchor_hash, hash);

    // Replaying it, or an older one, is refused.
    let err = net.apply(Op::ProxyAnchor { anchor: a1 }).unwrap_err();
    assert_eq!(err, LedgerError::StaleAnchor { current: 1, got: 1 });

    // Another key cannot anchor for this proxy.
    let other = keypair_from_seed(&[8; 32]).unwrap();
    let forged = SignedAnchor::sign(&other, net.proxy, 5, hash);
    assert_eq!(
        net.apply(Op::ProxyAnchor { anchor: forged }).unwrap_err(),
        LedgerError::BadSignature
    );
    // A tampered hash breaks the signature.
    let mut tampered = SignedAnchor::sign(&net.key, net.proxy, 5, hash);
    tampered.session_hash = SessionHash([1; 32]);
    assert_eq!(
        net.apply(Op::ProxyAnchor { anchor: tampered }).unwrap_err(),
        LedgerError::BadSignature
    );
    // Bound to one proxy contract.
    let elsewhere = SignedAnchor::sign(&net.key, Address::wallet("x"), 5, hash);
    assert!(net.apply(Op::ProxyAnchor { anchor: elsewhere }).is_err());

    let a7 = SignedAnchor::sign(&net.key, net.proxy, 7, SessionHash([2; 32]));
    net.apply(Op::ProxyAnchor { anchor: a7 }).unwrap();
    assert_eq!(net.world.proxies[&net.proxy].anchor_seqno, 7);
    net.world.check_invariants().unwrap();
}

#[test]
fn anchor_serde_roundtrip() {
    let net = Net::new(&[], 0);
    let a = SignedAnchor::sign(&net.key, net.proxy, 3, SessionHash([4; 32]));
    let op = Op::ProxyAnchor { anchor: a };
    let json = serde_json::to_string(&op).unwrap();
    assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
}

#[test]
fn only_the_owner_registers_a_nonce() {
    let mut net = Net::new(&["alice", "mallory"], 1_000_000);
    let client = net.client("alice", 100_000);
    let err = net
        .apply(Op::ClientRegister {
            sender: Address::wallet("mallory"),
            client,
            nonce: 42,
        })
        .unwrap_err();
    assert!(matches!(err, LedgerError::NotOwner { .. }));
    net.apply(Op::ClientRegister {
        sender: Address::wallet("alice"),
        client,
        nonce: 42,
    })
    .unwrap();
    assert_eq!(net.world.clients[&client].registered_nonce, 42);
}

#[test]
fn counters_restore_pending_until_anchored() {
    let mut c = PeerCounters::restore(50, 20, 9).unwrap();
    assert_eq!(c.view().in_memory, 50);
    assert_eq!(c.committed_chain(), 20);
    assert_eq!(c.anchored(8), 20);
    assert_eq!(c.anchored(9), 50);
    // Seqnos must move past the restored one.
    assert!(c.commit_db(9).is_err());
    c.add(5).unwrap();
    // A batch that read 53 before two more tokens were added.
    c.add(0).unwrap();
    assert!(c.commit_db_value(10, 56).is_err(), "above memory");
    assert!(c.commit_db_value(11, 49).is_err(), "below db");
    assert!(c.commit_db_value(12, 53).unwrap());
    assert_eq!(c.committed_db(), 53);
    assert!(c.commit_db(13).unwrap());
    assert_eq!(c.anchored(12), 53);
    assert_eq!(c.anchored(13), 55);
}

#[test]
fn owner_parses_hex_or_names_a_devnet_wallet() {
    let a = Address::wallet("alice");
    assert_eq!(Address::parse_owner(&a.to_hex()), a);
    assert_eq!(Address::parse_owner("alice"), a);
}

#[test]
fn plain_transfers_never_touch_contracts() {
    let mut net = Net::new(&["alice"], 1_000_000);
    let client = net.client("alice", 100_000);
    let alice = Address::wallet("alice");
    for (from, to) in [(alice, net.proxy), (net.proxy, alice), (alice, client)] {
        let err = net
            .apply(Op::Transfer {
                from,
                to,
                amount: 1,
            })
            .unwrap_err();
        assert!(matches!(err, LedgerError::NotAWallet(_)), "{err}");
    }
    net.world.check_invariants().unwrap();
}

#[test]
fn coins_never_land_on_contracts_outside_their_books() {
    let mut net = Net::new(&["alice"], 1_000_000);
    let alice = Address::wallet("alice");
    let client = net.client("alice", 100_000);
    // No minting onto a contract.
    let err = net
        .apply(Op::Mint {
            to: net.proxy,
            amount: 5,
        })
        .unwrap_err();
    assert!(matches!(err, LedgerError::NotAWallet(_)), "{err}");
    // A contract cannot attach value as if it were a wallet.
    let err = net
        .apply(Op::ClientTopUp {
            sender: net.proxy,
            client,
            amount: 1,
        })
        .unwrap_err();
    assert!(matches!(err, LedgerError::NotAWallet(_)), "{err}");
    // A pre-funded predictable address cannot become a contract.
    let bob = Address::wallet("bob");
    net.apply(Op::Mint {
        to: bob,
        amount: 10,
    })
    .unwrap();
    let future = Address::client_contract(&net.proxy, &bob);
    net.apply(Op::Transfer {
        from: alice,
        to: future,
        amount: 1,
    })
    .unwrap();
    let err = net
        .apply(Op::DeployClient {
            owner: bob,
            proxy: net.proxy,
            deposit: 5,
        })
        .unwrap_err();
    assert!(matches!(err, LedgerError::AddressHoldsCoins(_)), "{err}");
    net.world.check_invariants().unwrap();
}
