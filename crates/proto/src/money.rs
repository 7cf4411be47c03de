//! Conversions between the wire's money messages and the ledger's types. Every peer-sent
//! value goes through `*_from_wire`, which checks lengths and codes and never panics.

use crate::{Counters, PaymentStatus};
use cocoon_ledger::{Address, CounterView, Signature, SignedVoucher, VoucherOp};

/// Why a peer's money message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMoneyMessage(pub String);

impl std::fmt::Display for BadMoneyMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadMoneyMessage {}

pub fn voucher_to_wire(v: &SignedVoucher) -> crate::SignedVoucher {
    crate::SignedVoucher {
        op: v.op.code(),
        contract_address: v.contract.to_hex(),
        cumulative_tokens: v.cumulative,
        signature: v.signature.0.to_vec().into(),
    }
}

/// `Ok(None)` for the empty voucher (no payment signed yet).
pub fn voucher_from_wire(
    v: Option<&crate::SignedVoucher>,
) -> Result<Option<SignedVoucher>, BadMoneyMessage> {
    let Some(v) = v else { return Ok(None) };
    if v.signature.is_empty() && v.cumulative_tokens == 0 {
        return Ok(None);
    }
    let op = VoucherOp::from_code(v.op).map_err(|e| BadMoneyMessage(e.to_string()))?;
    let contract = Address::from_hex(&v.contract_address)
        .map_err(|_| BadMoneyMessage("voucher contract address is not 64 hex digits".into()))?;
    let signature: [u8; 64] = v
        .signature
        .as_ref()
        .try_into()
        .map_err(|_| BadMoneyMessage("voucher signature is not 64 bytes".into()))?;
    Ok(Some(SignedVoucher {
        op,
        contract,
        cumulative: v.cumulative_tokens,
        signature: Signature(signature),
    }))
}

pub fn counters_to_wire(c: &CounterView) -> Counters {
    Counters {
        tokens_committed_to_chain: c.committed_chain,
        tokens_committed_to_db: c.committed_db,
        max_tokens: c.in_memory,
    }
}

/// Checks the order `chain ≤ db ≤ memory` a proxy's counters always keep.
pub fn counters_from_wire(c: Option<&Counters>) -> Result<CounterView, BadMoneyMessage> {
    let c = c.cloned().unwrap_or_default();
    if c.tokens_committed_to_chain > c.tokens_committed_to_db
        || c.tokens_committed_to_db > c.max_tokens
    {
        return Err(BadMoneyMessage(format!(
            "counters out of order: chain {} db {} memory {}",
            c.tokens_committed_to_chain, c.tokens_committed_to_db, c.max_tokens
        )));
    }
    Ok(CounterView {
        in_memory: c.max_tokens,
        committed_db: c.tokens_committed_to_db,
        committed_chain: c.tokens_committed_to_chain,
    })
}

pub fn payment_status(voucher: Option<&SignedVoucher>, counters: &CounterView) -> PaymentStatus {
    PaymentStatus {
        voucher: voucher.map(voucher_to_wire),
        counters: Some(counters_to_wire(counters)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_ledger::{keypair_from_seed, Voucher};

    #[test]
    fn voucher_roundtrip_and_bad_input() {
        let key = keypair_from_seed(&[1; 32]).unwrap();
        let v = Voucher::new(VoucherOp::WorkerPayout, Address::wallet("w"), 77).sign(&key);
        let wire = voucher_to_wire(&v);
        assert_eq!(voucher_from_wire(Some(&wire)).unwrap(), Some(v));
        assert_eq!(voucher_from_wire(None).unwrap(), None);
        let mut bad = wire.clone();
        bad.signature = vec![0u8; 3].into();
        assert!(voucher_from_wire(Some(&bad)).is_err());
        let mut bad = wire.clone();
        bad.op = 5;
        assert!(voucher_from_wire(Some(&bad)).is_err());
        let mut bad = wire;
        bad.contract_address = "zz".into();
        assert!(voucher_from_wire(Some(&bad)).is_err());
    }

    #[test]
    fn counters_must_be_ordered() {
        let ok = Counters {
            tokens_committed_to_chain: 1,
            tokens_committed_to_db: 2,
            max_tokens: 3,
        };
        assert_eq!(counters_from_wire(Some(&ok)).unwrap().in_memory, 3);
        let bad = Counters {
            tokens_committed_to_chain: 4,
            ..ok
        };
        assert!(counters_from_wire(Some(&bad)).is_err());
        assert_eq!(counters_from_wire(None).unwrap(), CounterView::default());
    }
}
