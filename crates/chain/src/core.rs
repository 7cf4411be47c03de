//! The ledger part every chain implementation shares: the world, seq and block counters,
//! and how one op turns into the next state plus its history record.

use crate::{ChainError, Clock, Tip, TxRecord};
use cocoon_ledger::{Op, World};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) struct Ledger {
    /// Immutable snapshot: readers get a cheap `Arc` clone, writers swap in a new one.
    pub world: Arc<World>,
    pub seq: u64,
    pub block: u64,
    pub block_time: u64,
}

impl Ledger {
    pub fn new(world: World) -> Ledger {
        Ledger {
            world: Arc::new(world),
            seq: 0,
            block: 0,
            block_time: 0,
        }
    }

    /// Chain time: the clock, but never before what the ledger already saw (a restart with
    /// a clock behind the stored state, or wall-clock skew, must not make ops fail with
    /// `ClockWentBack`).
    pub fn now(&self, clock: &Clock) -> u64 {
        clock.now().max(self.world.now).max(self.block_time)
    }

    pub fn tip(&self, clock: &Clock) -> Tip {
        Tip {
            seq: self.seq,
            block: self.block,
            block_time: self.block_time,
            now: self.now(clock),
        }
    }

    /// Applies `op` to a copy: returns the next ledger and the record to append, leaving
    /// `self` untouched so that the caller can persist first and swap only on success.
    pub fn prepare(&self, op: Op, clock: &Clock) -> Result<(Ledger, TxRecord), ChainError> {
        let now = self.now(clock);
        let mut world = (*self.world).clone();
        let effects = world.apply(&op, now).map_err(ChainError::rejected)?;
        let (block, block_time) = if self.block == 0 || now > self.block_time {
            (self.block + 1, now)
        } else {
            (self.block, self.block_time)
        };
        let record = TxRecord {
            seq: self.seq + 1,
            block,
            time: now,
            op,
            effects,
        };
        let next = Ledger {
            world: Arc::new(world),
            seq: record.seq,
            block,
            block_time,
        };
        Ok((next, record))
    }
}

/// Records of `history` (ordered by seq, gap-free from 1) with `seq >= from`, at most `limit`.
pub fn slice_history(history: &[TxRecord], from: u64, limit: usize) -> Vec<TxRecord> {
    let start = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
    history.iter().skip(start).take(limit).cloned().collect()
}
