//! The proxy's three counters per peer (DESIGN §6, rollback resistance):
//!
//! - **in memory**: bumped right after each request;
//! - **committed to DB**: what the last DB batch (seqno S) wrote;
//! - **committed to chain**: what a DB batch covered by an on-chain anchor wrote. Only this
//!   value is ever signed into a voucher, so whatever a peer holds is backed by an anchored
//!   state that a restored old DB cannot silently forget.
//!
//! Always `chain ≤ db ≤ memory`, and none of them ever decreases.

use crate::error::{LedgerError, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The three values as they are reported to a peer or persisted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterView {
    pub in_memory: u64,
    pub committed_db: u64,
    pub committed_chain: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCounters {
    in_memory: u64,
    committed_db: u64,
    committed_chain: u64,
    /// DB commits not yet covered by an anchor: (seqno, value), seqnos ascending.
    pending: VecDeque<(u64, u64)>,
    /// The last DB batch seqno seen (commits must move forward).
    last_seqno: Option<u64>,
}

impl PeerCounters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores from the proxy DB. The values were committed, so memory starts at db.
    pub fn from_db(committed_db: u64, committed_chain: u64) -> Result<Self> {
        if committed_chain > committed_db {
            return Err(LedgerError::CounterAboveBound {
                which: "committed_chain",
                bound: "committed_db",
                got: committed_chain,
                limit: committed_db,
            });
        }
        Ok(PeerCounters {
            in_memory: committed_db,
            committed_db,
            committed_chain,
            pending: VecDeque::new(),
            last_seqno: None,
        })
    }

    /// Restores from the proxy DB where the value committed at `seqno` may not be anchored
    /// yet: it becomes chain-committed when an anchor for `seqno` (or later) is confirmed.
    pub fn restore(committed_db: u64, committed_chain: u64, seqno: u64) -> Result<Self> {
        let mut c = Self::from_db(committed_db, committed_chain)?;
        if committed_db > committed_chain {
            c.pending.push_back((seqno, committed_db));
        }
        c.last_seqno = Some(seqno);
        Ok(c)
    }

    pub fn view(&self) -> CounterView {
        CounterView {
            in_memory: self.in_memory,
            committed_db: self.committed_db,
            committed_chain: self.committed_chain,
        }
    }

    pub fn in_memory(&self) -> u64 {
        self.in_memory
    }

    pub fn committed_db(&self) -> u64 {
        self.committed_db
    }

    /// The highest value the proxy may sign into a voucher.
    pub fn committed_chain(&self) -> u64 {
        self.committed_chain
    }

    /// Records `tokens` more usage; returns the new in-memory total.
    pub fn add(&mut self, tokens: u64) -> Result<u64> {
        self.in_memory = self
            .in_memory
            .checked_add(tokens)
            .ok_or(LedgerError::Overflow("in-memory token counter"))?;
        Ok(self.in_memory)
    }

    /// The DB batch with `seqno` wrote the in-memory value. Returns whether it changed
    /// (unchanged peers need no DB write). Seqnos must increase: a repeated or older one
    /// means the caller's DB state is confused, and it must not be papered over.
    pub fn commit_db(&mut self, seqno: u64) -> Result<bool> {
        self.commit_db_value(seqno, self.in_memory)
    }

    /// Like [`Self::commit_db`] for a batch that wrote `value`, read from memory before the
    /// (slow, unlocked) DB write while usage may have grown: `committed_db ≤ value ≤ in_memory`.
    pub fn commit_db_value(&mut self, seqno: u64, value: u64) -> Result<bool> {
        if value > self.in_memory {
            return Err(LedgerError::CounterAboveBound {
                which: "committed_db",
                bound: "in_memory",
                got: value,
                limit: self.in_memory,
            });
        }
        if value < self.committed_db {
            return Err(LedgerError::CounterWentBack {
                which: "committed_db",
                current: self.committed_db,
                got: value,
            });
        }
        if let Some(last) = self.last_seqno {
            if seqno <= last {
                return Err(LedgerError::CounterWentBack {
                    which: "db seqno",
                    current: last,
                    got: seqno,
                });
            }
        }
        self.last_seqno = Some(seqno);
        if value == self.committed_db {
            return Ok(false);
        }
        self.committed_db = value;
        self.pending.push_back((seqno, value));
        Ok(true)
    }

    /// An anchor for `seqno` is confirmed on chain: every DB commit with seqno ≤ it is now
    /// committed to chain. Returns the chain-committed value.
    pub fn anchored(&mut self, seqno: u64) -> u64 {
        while let Some(&(s, value)) = self.pending.front() {
            if s > seqno {
                break;
            }
            // Pending values ascend with their seqnos, so this only moves forward.
            self.committed_chain = value;
            self.pending.pop_front();
        }
        self.committed_chain
    }

    /// The proxy's check of what a peer (worker or client) says it holds: a peer that
    /// knows more than the proxy means the proxy's state was rolled back.
    pub fn check_peer_not_ahead(&self, peer: &CounterView) -> Result<()> {
        let ours = self.view();
        for (which, p, o) in [
            (
                "committed_chain",
                peer.committed_chain,
                ours.committed_chain,
            ),
            ("committed_db", peer.committed_db, ours.committed_db),
        ] {
            if p > o {
                return Err(LedgerError::PeerAhead {
                    which,
                    peer: p,
                    ours: o,
                });
            }
        }
        Ok(())
    }
}

/// A peer's memory of the highest counters a proxy reported (kept by workers and clients).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenCounters(pub CounterView);

impl SeenCounters {
    /// Accepts a new report from the proxy: refused if any value is below what was seen
    /// (the proxy forgot something), otherwise remembered.
    pub fn observe(&mut self, report: CounterView) -> Result<()> {
        let seen = self.0;
        for (which, r, s) in [
            (
                "committed_chain",
                report.committed_chain,
                seen.committed_chain,
            ),
            ("committed_db", report.committed_db, seen.committed_db),
        ] {
            if r < s {
                return Err(LedgerError::PeerBehind {
                    which,
                    peer: r,
                    ours: s,
                });
            }
        }
        self.0 = CounterView {
            in_memory: report.in_memory.max(seen.in_memory),
            ..report
        };
        Ok(())
    }
}
