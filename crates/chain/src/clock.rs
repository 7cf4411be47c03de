//! Chain time: wall clock (default) or a fixed test base, plus an offset that `advance`
//! grows. Seconds, like the ledger.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Clock {
    /// `None` = wall clock; `Some(t)` = frozen at `t` (tests), moved only by `advance`.
    base: Option<u64>,
    offset: AtomicU64,
}

impl Clock {
    /// Wall-clock seconds since the Unix epoch.
    pub fn wall() -> Clock {
        Clock {
            base: None,
            offset: AtomicU64::new(0),
        }
    }

    /// A clock frozen at `start` that only `advance` moves: deterministic tests.
    pub fn manual(start: u64) -> Clock {
        Clock {
            base: Some(start),
            offset: AtomicU64::new(0),
        }
    }

    pub fn now(&self) -> u64 {
        let base = self.base.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        base.saturating_add(self.offset())
    }

    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::SeqCst)
    }

    /// Sets the offset (a durable chain restores the one it saved).
    pub fn set_offset(&self, offset: u64) {
        self.offset.store(offset, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: u64) -> u64 {
        let prev = self
            .offset
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
                Some(o.saturating_add(secs))
            })
            .unwrap_or(0);
        prev.saturating_add(secs)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::wall()
    }
}
