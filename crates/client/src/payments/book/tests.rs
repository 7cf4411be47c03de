use super::*;
use cocoon_chain::ledger::{keypair_from_seed, public_key, Voucher};

struct Proxy {
    key: ring::signature::Ed25519KeyPair,
    client: Address,
}

fn proxy(seed: u8) -> Proxy {
    Proxy {
        key: keypair_from_seed(&[seed; 32]).unwrap(),
        client: Address::wallet("client-contract"),
    }
}

impl Proxy {
    fn pk(&self) -> PublicKey {
        public_key(&self.key)
    }

    fn voucher(&self, op: VoucherOp, contract: Address, n: u64) -> proto::SignedVoucher {
        let v = Voucher::new(op, contract, n).sign(&self.key);
        proto::SignedVoucher {
            op: op.code(),
            contract_address: contract.to_hex(),
            cumulative_tokens: n,
            signature: v.signature.0.to_vec().into(),
        }
    }

    fn status(&self, voucher: Option<u64>, chain: u64, db: u64, mem: u64) -> proto::PaymentStatus {
        proto::PaymentStatus {
            voucher: voucher.map(|n| self.voucher(VoucherOp::ClientCharge, self.client, n)),
            counters: Some(proto::Counters {
                tokens_committed_to_chain: chain,
                tokens_committed_to_db: db,
                max_tokens: mem,
            }),
        }
    }
}

fn book(p: &Proxy) -> ProxyBook {
    ProxyBook {
        client_contract: p.client,
        ..Default::default()
    }
}

#[test]
fn accepts_forward_reports_and_keeps_the_highest_voucher() {
    let p = proxy(1);
    let mut b = book(&p);
    b.accept_report(&p.pk(), &p.status(None, 0, 0, 0)).unwrap();
    b.accept_report(&p.pk(), &p.status(Some(10), 10, 12, 15))
        .unwrap();
    b.accept_report(&p.pk(), &p.status(Some(10), 10, 15, 20))
        .unwrap();
    b.accept_report(&p.pk(), &p.status(Some(30), 30, 30, 31))
        .unwrap();
    assert_eq!(b.held.map(|v| v.cumulative), Some(30));
    assert_eq!(
        b.seen.0,
        CounterView {
            in_memory: 31,
            committed_db: 30,
            committed_chain: 30
        }
    );
    assert_eq!((b.refusals, b.refused.as_deref()), (0, None));
}

#[test]
fn refuses_counters_that_go_back_and_remembers_nothing_of_them() {
    let p = proxy(1);
    let mut b = book(&p);
    b.accept_report(&p.pk(), &p.status(Some(10), 10, 20, 25))
        .unwrap();
    let e = b
        .accept_report(&p.pk(), &p.status(Some(10), 10, 18, 30))
        .unwrap_err();
    assert!(matches!(
        e,
        Refusal::CountersBehind(LedgerError::PeerBehind {
            which: "committed_db",
            peer: 18,
            ours: 20
        })
    ));
    let text = e.to_string();
    assert!(text.contains("18") && text.contains("20"), "{text}");
    assert_eq!(b.seen.0.in_memory, 25, "a refused report changes nothing");
    assert_eq!(b.refusals, 1);
    assert!(b.refused.is_some());
    // Still behind on reconnect: still refused.
    assert!(b
        .accept_report(&p.pk(), &p.status(Some(10), 10, 19, 40))
        .is_err());
    assert_eq!(b.refusals, 2);
    // Caught up: accepted again.
    b.accept_report(&p.pk(), &p.status(Some(10), 10, 20, 40))
        .unwrap();
    assert_eq!(b.refused, None);
    // Missing counters read as zeros: behind.
    let mut s = p.status(Some(10), 0, 0, 0);
    s.counters = None;
    assert!(matches!(
        b.accept_report(&p.pk(), &s),
        Err(Refusal::CountersBehind(_))
    ));
}

#[test]
fn refuses_a_voucher_below_the_held_one_or_none_at_all() {
    let p = proxy(1);
    let mut b = book(&p);
    b.accept_report(&p.pk(), &p.status(Some(50), 50, 50, 50))
        .unwrap();
    assert_eq!(
        b.accept_report(&p.pk(), &p.status(Some(40), 50, 50, 50)),
        Err(Refusal::VoucherBehind { held: 50, got: 40 })
    );
    assert_eq!(
        b.accept_report(&p.pk(), &p.status(None, 50, 50, 50)),
        Err(Refusal::VoucherBehind { held: 50, got: 0 })
    );
    assert!(Refusal::VoucherBehind { held: 50, got: 40 }
        .to_string()
        .contains("40"));
    assert_eq!(b.held.map(|v| v.cumulative), Some(50));
    assert!(matches!(
        b.accept_report(&p.pk(), &p.status(Some(50), 60, 55, 70)),
        Err(Refusal::CountersOutOfOrder {
            chain: 60,
            db: 55,
            memory: 70
        })
    ));
}

#[test]
fn refuses_invalid_vouchers() {
    let p = proxy(1);
    let other = proxy(2);
    let mut b = book(&p);
    let cases = [
        // Signed by another key.
        other.voucher(VoucherOp::ClientCharge, p.client, 5),
        // Wrong op.
        p.voucher(VoucherOp::WorkerPayout, p.client, 5),
        // Another client's contract.
        p.voucher(VoucherOp::ClientCharge, Address::wallet("someone else"), 5),
        // Tampered count.
        proto::SignedVoucher {
            cumulative_tokens: 6,
            ..p.voucher(VoucherOp::ClientCharge, p.client, 5)
        },
        proto::SignedVoucher {
            signature: vec![1u8; 63].into(),
            ..p.voucher(VoucherOp::ClientCharge, p.client, 5)
        },
        proto::SignedVoucher {
            op: 7,
            ..p.voucher(VoucherOp::ClientCharge, p.client, 5)
        },
        proto::SignedVoucher {
            contract_address: "zz".into(),
            ..p.voucher(VoucherOp::ClientCharge, p.client, 5)
        },
    ];
    for v in cases {
        let status = proto::PaymentStatus {
            voucher: Some(v),
            counters: None,
        };
        assert!(matches!(
            b.accept_report(&p.pk(), &status),
            Err(Refusal::InvalidVoucher(_))
        ));
    }
    assert_eq!((b.refusals, b.held), (7, None));
}

#[test]
fn books_outlive_links_and_secrets_never_print() {
    let books = Books::default();
    let proxy = Address::wallet("proxy");
    books.with(&proxy, |b| {
        b.secret = Some(Secret([7; 32]));
        b.endpoint = "p:1".into();
    });
    let secret = books.with(&proxy, |b| b.secret.clone()).unwrap();
    assert_eq!(secret.hash(), Secret([7; 32]).hash());
    assert_ne!(secret.hash(), Secret::random().hash());
    let debug = format!("{:?}", books);
    assert!(!debug.contains("7, 7") && debug.contains("redacted"));
    let views = books.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].proxy_contract, proxy.to_hex());
    let json = serde_json::to_value(&views[0]).unwrap();
    assert!(json.get("secret").is_none());
}
