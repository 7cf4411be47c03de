//! Vouchers and anchors as peers hand them over: in protobuf (`SignedVoucher`,
//! `PaymentStatus`, `BalanceCompare`, through `cocoon_proto::money::*_from_wire`) and in JSON
//! (`cocoon_ledger::SignedVoucher`, `SignedAnchor`, as the chain's `/submit` carries them),
//! then verified and checked the way a contract, worker or client does. Properties (as in
//! `crates/ledger/tests/fuzz_json.rs` and `crates/proto/tests/fuzz_decode.rs`):
//!
//! - nothing panics, and memory stays linear in the input;
//! - a signature verifies exactly when it is the key's (deterministic Ed25519) signature of
//!   those fields: no edit of a genuine voucher or anchor, and no other encoding of one, passes;
//! - `check` accepts exactly when op, contract, signature and freshness all hold, and returns
//!   the increase;
//! - a peer's memory of counters never goes backwards, and a refused report changes nothing.
//!
//! Input: one byte of check parameters (expected op, contract, current count), then the bytes
//! decoded every way. The seeds in `fuzz/corpus/vouchers` are signed with the seed `[7; 32]`.
#![no_main]

use std::sync::OnceLock;

use cocoon_fuzz::{json_budget, split_first, within};
use cocoon_ledger::{
    keypair_from_seed, public_key, Address, CounterView, PeerCounters, PublicKey, SeenCounters,
    SignedAnchor, SignedVoucher, Voucher, VoucherOp,
};
use cocoon_proto::money::{counters_from_wire, voucher_from_wire};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use ring::signature::Ed25519KeyPair;

fn key() -> &'static (Ed25519KeyPair, PublicKey) {
    static KEY: OnceLock<(Ed25519KeyPair, PublicKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let k = keypair_from_seed(&[7; 32]).unwrap();
        let pk = public_key(&k);
        (k, pk)
    })
}

const OPS: [VoucherOp; 4] = [
    VoucherOp::ClientCharge,
    VoucherOp::ClientGrantRefund,
    VoucherOp::WorkerPayout,
    VoucherOp::WorkerLastPayout,
];

/// Verification and `check` of a decoded voucher against the oracle.
fn check_voucher(v: &SignedVoucher, params: u8) {
    let (key, pk) = key();
    let genuine = v.verify(pk).is_ok();
    let resigned = Voucher::new(v.op, v.contract, v.cumulative).sign(key);
    assert_eq!(
        genuine,
        resigned.signature == v.signature,
        "a signature verified that is not the key's signature of the voucher"
    );
    let expected_op = OPS[usize::from(params & 3)];
    let against = if params & 4 == 0 {
        v.contract
    } else {
        Address::wallet("other")
    };
    let current = match params >> 3 {
        0 => 0,
        1 => v.cumulative,
        2 => v.cumulative.saturating_sub(1),
        3 => v.cumulative.saturating_add(1),
        4 => u64::MAX,
        n => u64::from(n),
    };
    let fresh = if v.op.closes() {
        v.cumulative >= current
    } else {
        v.cumulative > current
    };
    let want = v.op == expected_op && v.contract == against && genuine && fresh;
    match v.check(expected_op, &against, pk, current) {
        Ok(delta) => {
            assert!(
                want,
                "check accepted {v:?} against {expected_op:?} at {current}"
            );
            assert_eq!(delta, v.cumulative - current);
        }
        Err(e) => assert!(!want && !e.to_string().is_empty(), "{e}"),
    }
}

fn check_anchor(a: &SignedAnchor) {
    let (key, pk) = key();
    let genuine = a.verify(pk).is_ok();
    let resigned = SignedAnchor::sign(key, a.proxy, a.seqno, a.session_hash);
    assert_eq!(
        genuine,
        resigned.signature == a.signature,
        "an anchor signature verified that is not the key's signature of the anchor"
    );
}

fn wire_voucher(v: Option<&cocoon_proto::SignedVoucher>, params: u8) {
    match voucher_from_wire(v) {
        Ok(Some(v)) => check_voucher(&v, params),
        Ok(None) => {}
        Err(e) => assert!(!e.0.is_empty()),
    }
}

/// A report of counters from the wire, as a worker or client takes it in.
fn wire_counters(c: Option<&cocoon_proto::Counters>) {
    let Ok(report) = counters_from_wire(c) else {
        return;
    };
    let mut seen = SeenCounters(CounterView {
        in_memory: 20,
        committed_db: 10,
        committed_chain: 5,
    });
    let before = seen.0;
    match seen.observe(report) {
        Ok(()) => {
            assert!(seen.0.committed_chain >= before.committed_chain);
            assert!(seen.0.committed_db >= before.committed_db);
            assert!(seen.0.in_memory >= before.in_memory);
        }
        Err(e) => {
            assert_eq!(seen.0, before);
            assert!(!e.to_string().is_empty());
        }
    }
    let mut ours = PeerCounters::new();
    let _ = ours.add(7);
    let _ = ours.check_peer_not_ahead(&report);
}

fuzz_target!(|data: &[u8]| {
    let (params, raw) = split_first(data);
    within("vouchers", json_budget(raw.len()), || {
        if let Ok(v) = cocoon_proto::SignedVoucher::decode(raw) {
            wire_voucher(Some(&v), params);
        }
        if let Ok(p) = cocoon_proto::PaymentStatus::decode(raw) {
            wire_voucher(p.voucher.as_ref(), params);
            wire_counters(p.counters.as_ref());
        }
        if let Ok(b) = cocoon_proto::BalanceCompare::decode(raw) {
            wire_voucher(b.highest_voucher.as_ref(), params);
            wire_counters(b.counters.as_ref());
        }
        if let Ok(v) = serde_json::from_slice::<SignedVoucher>(raw) {
            check_voucher(&v, params);
            let text = serde_json::to_vec(&v).unwrap();
            assert_eq!(serde_json::from_slice::<SignedVoucher>(&text).unwrap(), v);
        }
        if let Ok(a) = serde_json::from_slice::<SignedAnchor>(raw) {
            check_anchor(&a);
            let text = serde_json::to_vec(&a).unwrap();
            assert_eq!(serde_json::from_slice::<SignedAnchor>(&text).unwrap(), a);
        }
    });
});
