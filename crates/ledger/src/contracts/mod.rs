//! The three contract kinds as pure state machines (DESIGN §6).
//!
//! Where money lives: clients' deposits sit on the **proxy contract** (as in the reference),
//! split there into explicit buckets (client deposits, charged-but-unpaid, commission, stake)
//! so that every nanoTON at the proxy address is attributable. Client and worker contracts
//! only keep accounting and hold no coins at rest.
//!
//! Every method validates everything before it mutates anything, so an `Err` leaves both
//! contracts untouched, and returns the coin [`Transfer`]s its message chain causes for the
//! caller (the [`crate::World`] or the chain) to apply. Fees: none in this pure model; a
//! chain that charges gas declares it separately.

mod client;
mod proxy;
mod worker;

pub use client::ClientContract;
pub use proxy::ProxyContract;
pub use worker::WorkerContract;

use crate::address::Address;
use crate::error::{LedgerError, Result};
use serde::{Deserialize, Serialize};

/// Lifecycle shared by all three contract kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractState {
    Open,
    /// Winding down: no new money in; settlement and refunds still allowed.
    Closing,
    Closed,
}

/// Why coins moved (for history and for the CLI to print).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// A message's attached value delivered to a contract.
    Deposit,
    /// Balance above stake returned to the client owner.
    ClientWithdraw,
    /// Balance returned to the client owner when its contract closes.
    ClientRefund,
    /// Worker share of a payout, to the worker owner.
    WorkerPayout,
    /// Commission paid out to the proxy owner.
    ProxyWithdraw,
    /// Stake and remaining balance to the proxy owner on close.
    ProxyClose,
    /// Plain wallet-to-wallet transfer.
    Wallet,
}

/// One coin movement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: Address,
    pub to: Address,
    pub amount: u64,
    pub kind: TransferKind,
}

/// What an operation did to coin balances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    pub transfers: Vec<Transfer>,
}

impl Effects {
    pub fn none() -> Effects {
        Effects::default()
    }

    /// Adds a transfer; zero amounts are dropped so histories stay meaningful.
    pub fn push(&mut self, from: Address, to: Address, amount: u64, kind: TransferKind) {
        if amount > 0 {
            self.transfers.push(Transfer {
                from,
                to,
                amount,
                kind,
            });
        }
    }

    pub fn with(mut self, from: Address, to: Address, amount: u64, kind: TransferKind) -> Self {
        self.push(from, to, amount, kind);
        self
    }

    /// Total paid to `to` by these effects.
    pub fn paid_to(&self, to: &Address) -> u64 {
        self.transfers
            .iter()
            .filter(|t| t.to == *to)
            .fold(0u64, |acc, t| acc.saturating_add(t.amount))
    }
}

pub(crate) fn add(a: u64, b: u64, what: &'static str) -> Result<u64> {
    a.checked_add(b).ok_or(LedgerError::Overflow(what))
}

pub(crate) fn mul(a: u64, b: u64, what: &'static str) -> Result<u64> {
    a.checked_mul(b).ok_or(LedgerError::Overflow(what))
}

pub(crate) fn sub(a: u64, b: u64, account: Address) -> Result<u64> {
    a.checked_sub(b).ok_or(LedgerError::InsufficientFunds {
        account,
        needed: b,
        available: a,
    })
}

pub(crate) fn require_owner(sender: &Address, owner: &Address) -> Result<()> {
    if sender != owner {
        return Err(LedgerError::NotOwner {
            sender: *sender,
            owner: *owner,
        });
    }
    Ok(())
}
