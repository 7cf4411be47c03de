//! Every way a ledger operation can be refused. Variants carry the numbers involved so a
//! refusal can be logged, shown by the CLI, or asserted in a test without guessing.

use crate::address::Address;
use crate::contracts::ContractState;
use crate::voucher::VoucherOp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("voucher signature does not verify under the proxy key")]
    BadSignature,
    #[error("voucher is bound to contract {got}, not to this contract {expected}")]
    WrongContract { expected: Address, got: Address },
    #[error("voucher op {got:?} is not accepted here (expected {expected:?})")]
    WrongVoucherOp { expected: VoucherOp, got: VoucherOp },
    #[error("stale voucher: cumulative {got} tokens is not above the {current} already accepted")]
    StaleVoucher { current: u64, got: u64 },
    #[error("stale anchor: seqno {got} is not above the {current} already anchored")]
    StaleAnchor { current: u64, got: u64 },
    #[error("unknown voucher op code {0:#x}")]
    UnknownVoucherOp(u32),
    #[error("invalid Ed25519 key material")]
    BadKey,
    #[error("malformed {what}")]
    Malformed { what: &'static str },

    #[error("arithmetic overflow computing {0}")]
    Overflow(&'static str),
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("insufficient funds in {account}: need {needed} nanoTON, have {available}")]
    InsufficientFunds {
        account: Address,
        needed: u64,
        available: u64,
    },
    #[error("nothing to withdraw: balance {balance} nanoTON does not exceed stake {stake}")]
    NothingToWithdraw { balance: u64, stake: u64 },
    #[error("stake {got} nanoTON is below the minimum {min}")]
    StakeTooLow { got: u64, min: u64 },
    #[error("invalid root parameters: {0}")]
    InvalidParams(&'static str),

    #[error("contract {contract} is {state:?}; `{op}` is not allowed in that state")]
    WrongState {
        contract: Address,
        state: ContractState,
        op: &'static str,
    },
    #[error("contract {contract} is locked until {unlock_at}, now {now}")]
    NotUnlocked {
        contract: Address,
        unlock_at: u64,
        now: u64,
    },
    #[error("sender {sender} is not the owner {owner}")]
    NotOwner { sender: Address, owner: Address },
    #[error("contract {contract} belongs to proxy contract {expected}, not {got}")]
    WrongProxy {
        contract: Address,
        expected: Address,
        got: Address,
    },
    #[error("proxy contract still has {clients} open client and {workers} open worker contracts")]
    ProxyHasOpenContracts { clients: usize, workers: usize },
    #[error("accounting invariant violated: {0}")]
    Invariant(&'static str),
    #[error("{0} is a contract, not a wallet: use the contract's own ops")]
    NotAWallet(Address),
    #[error("address {0} already holds coins: a contract cannot be deployed there")]
    AddressHoldsCoins(Address),
    #[error("no contract or account at {0}")]
    UnknownContract(Address),
    #[error("a contract already exists at {0}")]
    AlreadyDeployed(Address),
    #[error("time went backwards: last {last}, now {now}")]
    ClockWentBack { last: u64, now: u64 },

    #[error("insufficient credit: request needs {needed} tokens, {available} available")]
    InsufficientCredit { needed: u64, available: u64 },
    #[error("client contract is {state:?}: the proxy extends no credit")]
    ClientNotOpen { state: ContractState },
    #[error("unknown reservation {0}")]
    UnknownReservation(u64),
    #[error("counter `{which}` would go backwards from {current} to {got}")]
    CounterWentBack {
        which: &'static str,
        current: u64,
        got: u64,
    },
    #[error("counter `{which}`: {got} would exceed `{bound}` = {limit}")]
    CounterAboveBound {
        which: &'static str,
        bound: &'static str,
        got: u64,
        limit: u64,
    },
    #[error("peer holds {peer} tokens ({which}) but this proxy only knows {ours}: state was rolled back")]
    PeerAhead {
        which: &'static str,
        peer: u64,
        ours: u64,
    },
    #[error("peer reports {peer} tokens ({which}), less than the {ours} it already saw: refusing")]
    PeerBehind {
        which: &'static str,
        peer: u64,
        ours: u64,
    },
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
