//! Voucher encoding, signatures, and every way a contract refuses a forged one.

mod common;

use cocoon_ledger::*;
use common::*;

fn key() -> ring::signature::Ed25519KeyPair {
    keypair_from_seed(&[1; 32]).unwrap()
}

#[test]
fn sign_then_verify_roundtrip_and_serde() {
    let k = key();
    let v = Voucher::new(VoucherOp::ClientCharge, Address::wallet("c"), 42).sign(&k);
    v.verify(&public_key(&k)).unwrap();
    let json = serde_json::to_string(&v).unwrap();
    let back: SignedVoucher = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
    back.verify(&public_key(&k)).unwrap();
}

#[test]
fn message_is_domain_separated_fixed_layout() {
    let c = Address([0xab; 32]);
    let m = Voucher::new(VoucherOp::WorkerPayout, c, 0x0102_0304_0506_0708).message();
    assert_eq!(m.len(), VOUCHER_MESSAGE_LEN);
    assert_eq!(&m[..18], b"cocoon/voucher/v1\0");
    assert_eq!(&m[18..22], &VoucherOp::WorkerPayout.code().to_be_bytes());
    assert_eq!(&m[22..54], &[0xab; 32]);
    assert_eq!(&m[54..], &[1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn op_codes_roundtrip_and_unknown_refused() {
    for op in [
        VoucherOp::ClientCharge,
        VoucherOp::ClientGrantRefund,
        VoucherOp::WorkerPayout,
        VoucherOp::WorkerLastPayout,
    ] {
        assert_eq!(VoucherOp::from_code(op.code()).unwrap(), op);
    }
    assert_eq!(
        VoucherOp::from_code(7),
        Err(LedgerError::UnknownVoucherOp(7))
    );
}

#[test]
fn tampered_fields_break_the_signature() {
    let k = key();
    let pk = public_key(&k);
    let v = Voucher::new(VoucherOp::ClientCharge, Address::wallet("c"), 42).sign(&k);
    let mut more = v;
    more.cumulative = 43;
    assert_eq!(more.verify(&pk), Err(LedgerError::BadSignature));
    let mut other_op = v;
    other_op.op = VoucherOp::ClientGrantRefund;
    assert_eq!(other_op.verify(&pk), Err(LedgerError::BadSignature));
    let mut moved = v;
    moved.contract = Address::wallet("d");
    assert_eq!(moved.verify(&pk), Err(LedgerError::BadSignature));
    let other_key = public_key(&keypair_from_seed(&[2; 32]).unwrap());
    assert_eq!(v.verify(&other_key), Err(LedgerError::BadSignature));
}

#[test]
fn malformed_signature_hex_is_refused() {
    let json = r#"{"op":"client_charge","contract":"00","cumulative":1,"signature":"zz"}"#;
    assert!(serde_json::from_str::<SignedVoucher>(json).is_err());
}

#[test]
fn contract_refuses_voucher_signed_by_another_key() {
    let mut net = Net::new(&["alice"], 1_000_000);
    let client = net.client("alice", 100_000);
    let rogue = keypair_from_seed(&[9; 32]).unwrap();
    let voucher = Voucher::new(VoucherOp::ClientCharge, client, 10).sign(&rogue);
    let before = net.world.clone();
    let err = net.apply(Op::ClientCharge { client, voucher }).unwrap_err();
    assert_eq!(err, LedgerError::BadSignature);
    assert_eq!(net.world, before, "a refused op changes nothing");
}

#[test]
fn contract_refuses_voucher_for_another_contract() {
    let mut net = Net::new(&["alice", "bob"], 1_000_000);
    let alice = net.client("alice", 100_000);
    let bob = net.client("bob", 100_000);
    let voucher = net.sign(VoucherOp::ClientCharge, bob, 10);
    let err = net
        .apply(Op::ClientCharge {
            client: alice,
            voucher,
        })
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::WrongContract {
            expected: alice,
            got: bob
        }
    );
    assert!(err.to_string().contains("not to this contract"));
}

#[test]
fn contract_refuses_lower_and_equal_counts() {
    let mut net = Net::new(&["alice"], 1_000_000);
    let client = net.client("alice", 100_000);
    net.charge(client, 100).unwrap();
    for stale in [100, 99, 0] {
        assert_eq!(
            net.charge(client, stale).unwrap_err(),
            LedgerError::StaleVoucher {
                current: 100,
                got: stale
            }
        );
    }
    // Replaying the very same accepted voucher is refused too.
    let again = net.sign(VoucherOp::ClientCharge, client, 100);
    assert!(matches!(
        net.apply(Op::ClientCharge {
            client,
            voucher: again
        }),
        Err(LedgerError::StaleVoucher { .. })
    ));
}

#[test]
fn contract_refuses_voucher_of_the_wrong_op() {
    let mut net = Net::new(&["alice", "w"], 1_000_000);
    let client = net.client("alice", 100_000);
    let worker = net.worker("w");
    // A payout voucher for the worker cannot be used as a charge, and vice versa.
    let payout = net.sign(VoucherOp::WorkerPayout, client, 10);
    assert_eq!(
        net.apply(Op::ClientCharge {
            client,
            voucher: payout
        })
        .unwrap_err(),
        LedgerError::WrongVoucherOp {
            expected: VoucherOp::ClientCharge,
            got: VoucherOp::WorkerPayout
        }
    );
    let charge = net.sign(VoucherOp::ClientCharge, worker, 10);
    assert!(matches!(
        net.apply(Op::WorkerPayout {
            worker,
            voucher: charge
        }),
        Err(LedgerError::WrongVoucherOp { .. })
    ));
    // A charge voucher cannot close the contract.
    let charge = net.sign(VoucherOp::ClientCharge, client, 10);
    assert!(matches!(
        net.apply(Op::ClientGrantRefund {
            client,
            voucher: charge
        }),
        Err(LedgerError::WrongVoucherOp { .. })
    ));
}

#[test]
fn worker_refuses_stale_payout_and_foreign_voucher() {
    let mut net = Net::new(&["w1", "w2"], 0);
    let w1 = net.worker("w1");
    let w2 = net.worker("w2");
    net.payout(w1, 10).unwrap();
    assert_eq!(
        net.payout(w1, 10).unwrap_err(),
        LedgerError::StaleVoucher {
            current: 10,
            got: 10
        }
    );
    let for_w2 = net.sign(VoucherOp::WorkerPayout, w2, 50);
    assert!(matches!(
        net.apply(Op::WorkerPayout {
            worker: w1,
            voucher: for_w2
        }),
        Err(LedgerError::WrongContract { .. })
    ));
}

#[test]
fn closing_vouchers_may_repeat_but_not_decrease() {
    let mut net = Net::new(&["alice", "w"], 1_000_000);
    let client = net.client("alice", 100_000);
    net.charge(client, 50).unwrap();
    let lower = net.sign(VoucherOp::ClientGrantRefund, client, 49);
    assert!(matches!(
        net.apply(Op::ClientGrantRefund {
            client,
            voucher: lower
        }),
        Err(LedgerError::StaleVoucher {
            current: 50,
            got: 49
        })
    ));
    let same = net.sign(VoucherOp::ClientGrantRefund, client, 50);
    net.apply(Op::ClientGrantRefund {
        client,
        voucher: same,
    })
    .unwrap();

    let worker = net.worker("w");
    let last = net.sign(VoucherOp::WorkerLastPayout, worker, 0);
    net.apply(Op::WorkerLastPayout {
        worker,
        voucher: last,
    })
    .unwrap();
    // The same closing voucher again: the contract is closed.
    assert!(matches!(
        net.apply(Op::WorkerLastPayout {
            worker,
            voucher: last
        }),
        Err(LedgerError::WrongState {
            state: ContractState::Closed,
            ..
        })
    ));
}
