//! The ledger's `SignatureFormat::TonCell` (pure, no TON library) signs exactly the cell hashes
//! the contracts check: the same bytes as `messages::voucher_body` / `anchor_body`'s hashes.

use cocoon_ledger::{Address, SessionHash, SignatureFormat, Voucher, VoucherOp};
use cocoon_ton::messages::{anchor_body, voucher_body, VoucherKind};
use cocoon_ton::state::to_ton;

#[test]
fn ton_cell_messages_are_the_contracts_cell_hashes() {
    let ops = [
        (VoucherOp::ClientCharge, VoucherKind::ClientCharge),
        (VoucherOp::ClientGrantRefund, VoucherKind::ClientGrantRefund),
        (VoucherOp::WorkerPayout, VoucherKind::WorkerPayout),
        (VoucherOp::WorkerLastPayout, VoucherKind::WorkerLastPayout),
    ];
    for (i, tokens) in [0u64, 1, 255, 1 << 40, u64::MAX].into_iter().enumerate() {
        let contract = Address([i as u8 * 37 + 1; 32]);
        for (op, kind) in ops {
            let ours =
                SignatureFormat::TonCell.voucher_message(&Voucher::new(op, contract, tokens));
            let cell = voucher_body(kind, tokens, &to_ton(&contract)).unwrap();
            assert_eq!(ours, cell.cell_hash().as_slice(), "{op:?} {tokens}");
        }
        let hash = SessionHash([i as u8; 32]);
        let ours = SignatureFormat::TonCell.anchor_message(&contract, tokens, &hash);
        let cell = anchor_body(&to_ton(&contract), tokens, &hash.0).unwrap();
        assert_eq!(ours, cell.cell_hash().as_slice());
        // The ledger's own format stays what it was.
        let v = Voucher::new(VoucherOp::ClientCharge, contract, tokens);
        assert_eq!(SignatureFormat::Ledger.voucher_message(&v), v.message());
    }
}
