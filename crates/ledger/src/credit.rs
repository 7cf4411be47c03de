//! The proxy's view of one client: how much it may still serve, and the reservations of
//! requests in flight (DESIGN §6, credit).
//!
//! **Everything here is in adjusted tokens**, the unit vouchers count. nanoTON amounts from
//! the chain are converted by truncating division by `price_per_token`, which can only
//! under-state what the client paid, never over-state it.
//!
//! ```text
//! credit = min(paid, charged_on_chain + stake) − reserved − used
//!   paid             = charged_on_chain + balance / price   (all the client ever put in)
//!   charged_on_chain = the client contract's tokens_charged
//!   stake            = stake / price   (served-but-unsettled usage the proxy risks)
//!   reserved         = worst case of the requests in flight
//!   used             = all tokens used so far (the in-memory counter, charged or not)
//! ```

use crate::contracts::{ClientContract, ContractState};
use crate::counters::PeerCounters;
use crate::error::{LedgerError, Result};
use crate::pricing::RootParams;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the proxy knows of a client contract on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnChainClient {
    pub state: ContractState,
    /// nanoTON.
    pub balance: u64,
    /// nanoTON.
    pub stake: u64,
    /// Adjusted tokens.
    pub tokens_charged: u64,
}

impl From<&ClientContract> for OnChainClient {
    fn from(c: &ClientContract) -> Self {
        OnChainClient {
            state: c.state,
            balance: c.balance,
            stake: c.stake,
            tokens_charged: c.tokens_charged,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReservationId(pub u64);

/// The outcome of settling one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Tokens billed: the actual usage, capped at the reservation.
    pub billed: u64,
    /// Tokens reported above the reservation and therefore not billed (the worker enforces
    /// `max_tokens`, so nonzero means a misbehaving worker or a bad prompt estimate).
    pub unbilled: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAccount {
    price_per_token: u64,
    onchain: OnChainClient,
    used: PeerCounters,
    reservations: BTreeMap<ReservationId, u64>,
    reserved: u64,
    next_id: u64,
}

impl ClientAccount {
    pub fn new(price_per_token: u64, onchain: OnChainClient, used: PeerCounters) -> Result<Self> {
        let mut account = ClientAccount {
            price_per_token,
            onchain: OnChainClient {
                tokens_charged: 0,
                ..onchain
            },
            used,
            reservations: BTreeMap::new(),
            reserved: 0,
            next_id: 0,
        };
        account.observe_chain(onchain)?;
        Ok(account)
    }

    pub fn onchain(&self) -> &OnChainClient {
        &self.onchain
    }

    pub fn used(&self) -> &PeerCounters {
        &self.used
    }

    /// Counters for DB commits and anchors (usage is added only via `settle`).
    pub fn used_mut(&mut self) -> &mut PeerCounters {
        &mut self.used
    }

    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    pub fn in_flight(&self) -> usize {
        self.reservations.len()
    }

    fn to_tokens(&self, nano: u64) -> u64 {
        // A free network extends unlimited credit; avoid dividing by zero.
        nano.checked_div(self.price_per_token).unwrap_or(u64::MAX)
    }

    /// Tokens the client has paid for: charged on chain plus its remaining balance.
    pub fn paid_tokens(&self) -> u64 {
        self.onchain
            .tokens_charged
            .saturating_add(self.to_tokens(self.onchain.balance))
    }

    /// Tokens the proxy may still reserve for this client (0 unless the contract is open:
    /// a closing client is being settled, not served).
    pub fn credit(&self) -> u64 {
        if self.onchain.state != ContractState::Open {
            return 0;
        }
        let limit = self.paid_tokens().min(
            self.onchain
                .tokens_charged
                .saturating_add(self.to_tokens(self.onchain.stake)),
        );
        limit
            .saturating_sub(self.reserved)
            .saturating_sub(self.used.in_memory())
    }

    /// Reserves `tokens` for a request about to run.
    pub fn reserve(&mut self, tokens: u64) -> Result<ReservationId> {
        if self.onchain.state != ContractState::Open {
            return Err(LedgerError::ClientNotOpen {
                state: self.onchain.state,
            });
        }
        let available = self.credit();
        if tokens > available {
            return Err(LedgerError::InsufficientCredit {
                needed: tokens,
                available,
            });
        }
        // credit() ≥ tokens implies reserved + tokens fits, but stay checked regardless.
        let reserved = self
            .reserved
            .checked_add(tokens)
            .ok_or(LedgerError::Overflow("reserved tokens"))?;
        let id = ReservationId(self.next_id);
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or(LedgerError::Overflow("reservation id"))?;
        self.reserved = reserved;
        self.reservations.insert(id, tokens);
        Ok(id)
    }

    /// Reserves the worst case of a request: `max_tokens` and the prompt estimate at the
    /// client's `max_coefficient` (no worker above it may take the request).
    pub fn reserve_request(
        &mut self,
        params: &RootParams,
        prompt_estimate: u64,
        max_tokens: u64,
        max_coefficient: u32,
    ) -> Result<(ReservationId, u64)> {
        let tokens = params.reservation_tokens(prompt_estimate, max_tokens, max_coefficient);
        Ok((self.reserve(tokens)?, tokens))
    }

    fn take(&mut self, id: ReservationId) -> Result<u64> {
        let tokens = self
            .reservations
            .remove(&id)
            .ok_or(LedgerError::UnknownReservation(id.0))?;
        // Each reservation was added to `reserved`, so this cannot underflow.
        self.reserved -= tokens;
        Ok(tokens)
    }

    /// Bills a finished request: `actual` adjusted tokens, never more than were reserved.
    pub fn settle(&mut self, id: ReservationId, actual: u64) -> Result<Settlement> {
        let reserved = *self
            .reservations
            .get(&id)
            .ok_or(LedgerError::UnknownReservation(id.0))?;
        let billed = actual.min(reserved);
        // Add first: if it overflows, the reservation stays and nothing changed.
        self.used.add(billed)?;
        self.take(id)?;
        Ok(Settlement {
            billed,
            unbilled: actual - billed,
        })
    }

    /// Bills part of a request that goes on (a worker failed mid-answer and another one
    /// continues it): `actual` adjusted tokens, at most what is still reserved, come out of the
    /// reservation, which stays open for the rest.
    pub fn settle_part(&mut self, id: ReservationId, actual: u64) -> Result<Settlement> {
        let reserved = *self
            .reservations
            .get(&id)
            .ok_or(LedgerError::UnknownReservation(id.0))?;
        let billed = actual.min(reserved);
        self.used.add(billed)?;
        self.reservations.insert(id, reserved - billed);
        // `billed` ≤ this reservation ≤ `reserved` in total.
        self.reserved -= billed;
        Ok(Settlement {
            billed,
            unbilled: actual - billed,
        })
    }

    /// Frees the reservation of a request that used nothing (failed before answering).
    pub fn release(&mut self, id: ReservationId) -> Result<u64> {
        self.take(id)
    }

    /// Tokens used but not yet charged on chain.
    pub fn uncharged(&self) -> u64 {
        self.used
            .in_memory()
            .saturating_sub(self.onchain.tokens_charged)
    }

    /// Tokens that may be signed into a charge voucher now, if above what is charged.
    pub fn chargeable(&self) -> Option<u64> {
        let anchored = self.used.committed_chain();
        (anchored > self.onchain.tokens_charged).then_some(anchored)
    }

    /// Takes in a newer on-chain state. The charged counter never goes back, and can never
    /// exceed what the proxy has anchored: if it does, the chain accepted a voucher this
    /// proxy no longer remembers signing — its state was rolled back.
    pub fn observe_chain(&mut self, onchain: OnChainClient) -> Result<()> {
        if onchain.tokens_charged < self.onchain.tokens_charged {
            return Err(LedgerError::CounterWentBack {
                which: "tokens_charged",
                current: self.onchain.tokens_charged,
                got: onchain.tokens_charged,
            });
        }
        if onchain.tokens_charged > self.used.committed_chain() {
            return Err(LedgerError::PeerAhead {
                which: "tokens_charged",
                peer: onchain.tokens_charged,
                ours: self.used.committed_chain(),
            });
        }
        self.onchain = onchain;
        Ok(())
    }
}
