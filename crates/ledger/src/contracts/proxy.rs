//! The proxy contract: holds client deposits, charged money awaiting worker payouts, the
//! proxy's commission and its stake. The sum of those four buckets is exactly the coin
//! balance at its address (checked by `World::check_invariants`).

use super::{add, mul, require_owner, sub, ContractState, Effects, TransferKind};
use crate::address::{Address, PublicKey};
use crate::anchor::{SessionHash, SignedAnchor};
use crate::error::{LedgerError, Result};
use crate::pricing::RootParams;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyContract {
    pub address: Address,
    /// Receives commission withdrawals and, on close, the stake.
    pub owner: Address,
    /// The proxy's voucher key (sealed in its TEE).
    pub key: PublicKey,
    /// Prices and delays, fixed for the life of this contract (a change deploys a new one).
    pub params: RootParams,
    pub state: ContractState,
    /// When a closing proxy may complete its close.
    pub unlock_at: u64,
    /// The proxy's own guarantee: backs worker payouts for usage not yet charged to clients.
    pub stake: u64,
    /// Earned commission, withdrawable by the owner at any time.
    pub commission: u64,
    /// Σ balance of this proxy's client contracts (segregated: never used to pay workers).
    pub client_deposits: u64,
    /// Charged from clients, not yet paid out to workers.
    pub charged: u64,
    /// Client and worker contracts not yet closed; the proxy cannot close while any remain.
    pub clients: BTreeSet<Address>,
    pub workers: BTreeSet<Address>,
    /// The latest anchor of the proxy's DB state (seqno 0 = none yet).
    #[serde(default)]
    pub anchor_seqno: u64,
    #[serde(default)]
    pub anchor_hash: SessionHash,
}

impl ProxyContract {
    /// A new proxy contract holding `stake` (the deploy message's value).
    pub fn deploy(
        owner: Address,
        key: PublicKey,
        params: RootParams,
        params_version: u64,
        stake: u64,
    ) -> Result<ProxyContract> {
        validate_params(&params)?;
        if stake < params.min_proxy_stake {
            return Err(LedgerError::StakeTooLow {
                got: stake,
                min: params.min_proxy_stake,
            });
        }
        Ok(ProxyContract {
            address: Address::proxy_contract(&owner, &key, params_version),
            owner,
            key,
            params,
            state: ContractState::Open,
            unlock_at: 0,
            stake,
            commission: 0,
            client_deposits: 0,
            charged: 0,
            clients: BTreeSet::new(),
            workers: BTreeSet::new(),
            anchor_seqno: 0,
            anchor_hash: SessionHash::default(),
        })
    }

    /// Coins this contract must hold: the sum of its buckets.
    pub fn holdings(&self) -> Result<u64> {
        let a = add(self.stake, self.commission, "proxy holdings")?;
        let b = add(self.client_deposits, self.charged, "proxy holdings")?;
        add(a, b, "proxy holdings")
    }

    fn require_state(&self, state: ContractState, op: &'static str) -> Result<()> {
        if self.state != state {
            return Err(LedgerError::WrongState {
                contract: self.address,
                state: self.state,
                op,
            });
        }
        Ok(())
    }

    /// Anyone may add stake (the value attached) while the proxy is open.
    pub fn increase_stake(&mut self, amount: u64) -> Result<Effects> {
        self.require_state(ContractState::Open, "increase_stake")?;
        if amount == 0 {
            return Err(LedgerError::ZeroAmount);
        }
        self.stake = add(self.stake, amount, "proxy stake")?;
        Ok(Effects::none())
    }

    /// Records a proxy-signed anchor of its DB state. Seqnos strictly increase, so an
    /// anchor can neither be replayed nor moved back by anyone, including the proxy.
    pub fn anchor(&mut self, anchor: &SignedAnchor) -> Result<Effects> {
        if self.state == ContractState::Closed {
            return Err(LedgerError::WrongState {
                contract: self.address,
                state: self.state,
                op: "anchor",
            });
        }
        if anchor.proxy != self.address {
            return Err(LedgerError::WrongContract {
                expected: self.address,
                got: anchor.proxy,
            });
        }
        anchor.verify(&self.key)?;
        if anchor.seqno <= self.anchor_seqno {
            return Err(LedgerError::StaleAnchor {
                current: self.anchor_seqno,
                got: anchor.seqno,
            });
        }
        self.anchor_seqno = anchor.seqno;
        self.anchor_hash = anchor.session_hash;
        Ok(Effects::none())
    }

    /// Pays the earned commission to the owner.
    pub fn withdraw(&mut self, sender: &Address) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        if self.commission == 0 {
            return Err(LedgerError::NothingToWithdraw {
                balance: 0,
                stake: 0,
            });
        }
        let amount = std::mem::take(&mut self.commission);
        Ok(Effects::none().with(
            self.address,
            self.owner,
            amount,
            TransferKind::ProxyWithdraw,
        ))
    }

    /// Open → closing: no new clients, workers or top-ups; settlement goes on, and the
    /// close can complete after `proxy_delay_before_close`, giving clients and workers time
    /// to submit their last vouchers.
    pub fn request_close(&mut self, sender: &Address, now: u64) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        self.require_state(ContractState::Open, "request_close")?;
        self.unlock_at = add(
            now,
            self.params.proxy_delay_before_close_secs,
            "proxy unlock time",
        )?;
        self.state = ContractState::Closing;
        Ok(Effects::none())
    }

    /// Closing → closed once unlocked and every client refunded and every worker paid:
    /// pays stake, commission and any charged remainder to the owner.
    pub fn complete_close(&mut self, sender: &Address, now: u64) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        self.require_state(ContractState::Closing, "complete_close")?;
        if now < self.unlock_at {
            return Err(LedgerError::NotUnlocked {
                contract: self.address,
                unlock_at: self.unlock_at,
                now,
            });
        }
        if !self.clients.is_empty() || !self.workers.is_empty() {
            return Err(LedgerError::ProxyHasOpenContracts {
                clients: self.clients.len(),
                workers: self.workers.len(),
            });
        }
        // With every client closed their deposits are all refunded; a nonzero value would
        // mean broken accounting, so refuse rather than hand client money to the owner.
        if self.client_deposits != 0 {
            return Err(LedgerError::Invariant(
                "client deposits remain after every client closed",
            ));
        }
        let amount = self.holdings()?;
        self.stake = 0;
        self.commission = 0;
        self.charged = 0;
        self.state = ContractState::Closed;
        Ok(Effects::none().with(self.address, self.owner, amount, TransferKind::ProxyClose))
    }

    // ---- Hooks for client and worker contracts (their messages to this contract). ----
    // Each validates before it mutates, so a failed hook leaves the proxy unchanged.

    pub(crate) fn register(&mut self, contract: Address, worker: bool) -> Result<()> {
        self.require_state(ContractState::Open, "register")?;
        let set = if worker {
            &mut self.workers
        } else {
            &mut self.clients
        };
        if !set.insert(contract) {
            return Err(LedgerError::AlreadyDeployed(contract));
        }
        Ok(())
    }

    pub(crate) fn unregister(&mut self, contract: &Address, worker: bool) {
        if worker {
            self.workers.remove(contract);
        } else {
            self.clients.remove(contract);
        }
    }

    pub(crate) fn client_deposit(&mut self, amount: u64) -> Result<()> {
        self.require_state(ContractState::Open, "client top_up")?;
        self.client_deposits = add(self.client_deposits, amount, "client deposits")?;
        Ok(())
    }

    /// A client was charged `amount`: it moves from deposits to charged.
    pub(crate) fn client_charged(&mut self, amount: u64) -> Result<()> {
        let deposits = sub(self.client_deposits, amount, self.address)?;
        let charged = add(self.charged, amount, "charged")?;
        self.client_deposits = deposits;
        self.charged = charged;
        Ok(())
    }

    /// Returns `amount` of a client's deposit to its owner.
    pub(crate) fn client_refund(
        &mut self,
        to: Address,
        amount: u64,
        kind: TransferKind,
    ) -> Result<Effects> {
        self.client_deposits = sub(self.client_deposits, amount, self.address)?;
        Ok(Effects::none().with(self.address, to, amount, kind))
    }

    /// Pays `delta` tokens of work: `delta × fee` to the worker owner, `delta × (price −
    /// fee)` into commission. Paid from charged client money first; any shortfall (work the
    /// proxy served on credit and has not charged yet) comes out of the proxy's stake,
    /// which is what the stake is for. Never from client deposits.
    pub(crate) fn worker_payout(&mut self, to: Address, delta: u64) -> Result<Effects> {
        let total = mul(delta, self.params.price_per_token, "payout total")?;
        let worker_part = mul(delta, self.params.worker_fee_per_token, "worker part")?;
        // validate_params guarantees fee ≤ price at deploy; a stored (decoded) state may not.
        let commission_part = total
            .checked_sub(worker_part)
            .ok_or(LedgerError::InvalidParams(
                "worker_fee_per_token exceeds price_per_token",
            ))?;
        let from_charged = total.min(self.charged);
        let from_stake = total - from_charged;
        if from_stake > self.stake {
            return Err(LedgerError::InsufficientFunds {
                account: self.address,
                needed: total,
                available: self.charged.saturating_add(self.stake),
            });
        }
        let commission = add(self.commission, commission_part, "commission")?;
        self.charged -= from_charged;
        self.stake -= from_stake;
        self.commission = commission;
        Ok(Effects::none().with(self.address, to, worker_part, TransferKind::WorkerPayout))
    }
}

pub(crate) fn validate_params(p: &RootParams) -> Result<()> {
    if p.worker_fee_per_token > p.price_per_token {
        return Err(LedgerError::InvalidParams(
            "worker_fee_per_token exceeds price_per_token",
        ));
    }
    Ok(())
}
