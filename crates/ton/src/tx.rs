//! What a transaction did, read from its BOC (the `data` field of the API's transactions):
//! whether the contract's code ran to a success, and if not, its exit code. The TON HTTP API
//! does not report compute phases otherwise, and a contract's refusal (`throw 133`) is how
//! the Cocoon contracts say no.
//!
//! Only ordinary transactions are decoded (`trans_ord$0000`, the kind every message to an
//! account produces); the layout is block.tlb's `Transaction` and `TransactionDescr`.

use crate::TonError;
use tonlib_core::cell::{Cell, CellParser};

fn cell_err(e: impl std::fmt::Display) -> TonError {
    TonError::Cell(format!("transaction: {e}"))
}

/// How one transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The compute phase's exit code; `None` when it was skipped (no code or state, or no
    /// gas: the message was not processed).
    pub exit_code: Option<i32>,
    pub compute_success: bool,
    /// The action phase's result code, when it ran.
    pub action_result: Option<i32>,
    pub aborted: bool,
}

impl Outcome {
    /// The contract accepted the message and its actions (sends, reserves) all applied.
    pub fn ok(&self) -> bool {
        self.compute_success && !self.aborted && self.action_result.unwrap_or(0) == 0
    }

    /// The code to report for a failure: the compute exit code, else the action result.
    pub fn failure_code(&self) -> Option<i32> {
        if self.ok() {
            return None;
        }
        match (self.compute_success, self.exit_code, self.action_result) {
            (false, Some(code), _) => Some(code),
            (true, _, Some(code)) if code != 0 => Some(code),
            _ => Some(-1),
        }
    }
}

/// Decodes the outcome of the transaction in `tx` (a transaction cell).
pub fn outcome(tx: &Cell) -> Result<Outcome, TonError> {
    let mut p = tx.parser();
    if p.load_u8(4).map_err(cell_err)? != 0b0111 {
        return Err(cell_err("not a transaction"));
    }
    // account_addr, lt, prev_trans_hash, prev_trans_lt, now, outmsg_cnt, orig/end status.
    p.skip_bits(256 + 64 + 256 + 64 + 32 + 15 + 2 + 2)
        .map_err(cell_err)?;
    let _messages = p.next_reference().map_err(cell_err)?;
    currency_collection(&mut p)?; // total_fees
    let _state_update = p.next_reference().map_err(cell_err)?;
    let descr = p.next_reference().map_err(cell_err)?;
    let mut d = descr.parser();
    if d.load_u8(4).map_err(cell_err)? != 0 {
        return Err(cell_err("not an ordinary transaction"));
    }
    let _credit_first = d.load_bit().map_err(cell_err)?;
    if d.load_bit().map_err(cell_err)? {
        // storage phase
        d.load_coins().map_err(cell_err)?;
        if d.load_bit().map_err(cell_err)? {
            d.load_coins().map_err(cell_err)?;
        }
        status_change(&mut d)?;
    }
    if d.load_bit().map_err(cell_err)? {
        // credit phase
        if d.load_bit().map_err(cell_err)? {
            d.load_coins().map_err(cell_err)?;
        }
        currency_collection(&mut d)?;
    }
    let (compute_success, exit_code) = if d.load_bit().map_err(cell_err)? {
        let success = d.load_bit().map_err(cell_err)?;
        let _msg_state_used = d.load_bit().map_err(cell_err)?;
        let _account_activated = d.load_bit().map_err(cell_err)?;
        d.load_coins().map_err(cell_err)?; // gas fees
        let vm = d.next_reference().map_err(cell_err)?;
        let mut v = vm.parser();
        var_uint(&mut v, 3)?; // gas_used: VarUInteger 7
        var_uint(&mut v, 3)?; // gas_limit
        if v.load_bit().map_err(cell_err)? {
            var_uint(&mut v, 2)?; // gas_credit: VarUInteger 3
        }
        let _mode = v.load_u8(8).map_err(cell_err)?;
        let exit = v.load_u32(32).map_err(cell_err)? as i32;
        (success, Some(exit))
    } else {
        (false, None) // skipped: the reason does not matter here
    };
    let action_result = if d.load_bit().map_err(cell_err)? {
        let action = d.next_reference().map_err(cell_err)?;
        let mut a = action.parser();
        let _success = a.load_bit().map_err(cell_err)?;
        let _valid = a.load_bit().map_err(cell_err)?;
        let _no_funds = a.load_bit().map_err(cell_err)?;
        status_change(&mut a)?;
        for _ in 0..2 {
            if a.load_bit().map_err(cell_err)? {
                a.load_coins().map_err(cell_err)?; // forward and action fees
            }
        }
        Some(a.load_u32(32).map_err(cell_err)? as i32)
    } else {
        None
    };
    let aborted = d.load_bit().map_err(cell_err)?;
    Ok(Outcome {
        exit_code,
        compute_success,
        action_result,
        aborted,
    })
}

/// `grams:Grams other:ExtraCurrencyCollection` (a HashmapE: one bit, a reference if set).
fn currency_collection(p: &mut CellParser) -> Result<(), TonError> {
    p.load_coins().map_err(cell_err)?;
    if p.load_bit().map_err(cell_err)? {
        p.next_reference().map_err(cell_err)?;
    }
    Ok(())
}

/// `acst_unchanged$0 | acst_frozen$10 | acst_deleted$11`.
fn status_change(p: &mut CellParser) -> Result<(), TonError> {
    if p.load_bit().map_err(cell_err)? {
        p.load_bit().map_err(cell_err)?;
    }
    Ok(())
}

/// `VarUInteger n`: a `len_bits`-bit byte count, then that many bytes.
fn var_uint(p: &mut CellParser, len_bits: usize) -> Result<(), TonError> {
    let len = usize::from(p.load_u8(len_bits).map_err(cell_err)?);
    p.skip_bits(len * 8).map_err(cell_err)
}
