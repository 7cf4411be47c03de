//! `DecayingRates`: per-second rates of a few event series over the windows 1 s, 10 s,
//! 1 min, 10 min, 1 h and 1 day.
//!
//! Choice: **exponentially decaying counters** (like Unix load averages), one per series
//! and window, with time constant τ = the window. A burst of N events reads N/τ per second
//! right after it and decays smoothly (×1/e per τ) afterwards; a steady rate r reads r in
//! every window. Compared with bucketed rings this needs one value per window instead of
//! a ring per window, never shows a step when a bucket falls out, and reads in O(1).
//!
//! Cost: recording is one relaxed `fetch_add` into a per-series pending counter plus one
//! relaxed load of the last fold time (no lock, no allocation). Pending amounts are folded
//! into the decayed values at most every [`FOLD_INTERVAL`] by whichever recorder first
//! notices the interval passed, under a `try_lock` (a recorder never waits: if another
//! thread is folding, its amount simply waits for the next fold), and by every read.
//! A pending amount is taken to have happened at the previous fold, which it follows by
//! less than `FOLD_INTERVAL` (a fold always runs *before* the amount that triggered it is
//! added), so the time error is under 10 ms: at most 1 % on the 1 s window.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, TryLockError};
use std::time::{Duration, Instant};

/// One averaging window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The `window` label value and `/jsonstats` key.
    pub label: &'static str,
    pub seconds: u64,
}

/// The windows every rate is reported over.
pub const WINDOWS: [Window; 6] = [
    Window {
        label: "1s",
        seconds: 1,
    },
    Window {
        label: "10s",
        seconds: 10,
    },
    Window {
        label: "1m",
        seconds: 60,
    },
    Window {
        label: "10m",
        seconds: 600,
    },
    Window {
        label: "1h",
        seconds: 3600,
    },
    Window {
        label: "1d",
        seconds: 86_400,
    },
];

/// Pending amounts are folded in at most this often while events keep coming.
pub const FOLD_INTERVAL: Duration = Duration::from_millis(10);

/// Per-second rates of one series, one per entry of [`WINDOWS`].
pub type Rates = [f64; WINDOWS.len()];

struct Folded {
    /// Microseconds since `start` of the last fold.
    at_us: u64,
    /// Σ amount × e^(−age/τ) per series and window.
    values: Box<[Rates]>,
}

/// Decaying rates of `series` independent event series (see the module docs).
pub struct DecayingRates {
    start: Instant,
    pending: Box<[AtomicU64]>,
    last_fold_us: AtomicU64,
    folded: Mutex<Folded>,
}

impl std::fmt::Debug for DecayingRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecayingRates")
            .field("series", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl DecayingRates {
    /// Rates for `series` series, the clock starting now.
    pub fn new(series: usize) -> Self {
        Self::starting_at(series, Instant::now())
    }

    /// Rates whose clock starts at `start` (tests drive them with `*_at` and made-up
    /// instants at or after it).
    pub fn starting_at(series: usize, start: Instant) -> Self {
        DecayingRates {
            start,
            pending: (0..series).map(|_| AtomicU64::new(0)).collect(),
            last_fold_us: AtomicU64::new(0),
            folded: Mutex::new(Folded {
                at_us: 0,
                values: vec![[0.0; WINDOWS.len()]; series].into_boxed_slice(),
            }),
        }
    }

    fn micros(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// Records `amount` events of `series` now.
    pub fn add(&self, series: usize, amount: u64) {
        self.add_all_at(&[(series, amount)], Instant::now());
    }

    /// Records several (series, amount) pairs that happened at `now`. Out-of-range series
    /// are ignored.
    pub fn add_all_at(&self, amounts: &[(usize, u64)], now: Instant) {
        let now_us = self.micros(now);
        let fold_us = FOLD_INTERVAL.as_micros() as u64;
        if now_us.saturating_sub(self.last_fold_us.load(Relaxed)) >= fold_us {
            let guard = match self.folded.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut folded) = guard {
                self.fold(&mut folded, now_us);
            }
        }
        for &(series, amount) in amounts {
            if let Some(p) = self.pending.get(series) {
                p.fetch_add(amount, Relaxed);
            }
        }
    }

    /// Adds what is pending (as of the previous fold) and decays everything to `now_us`.
    fn fold(&self, folded: &mut Folded, now_us: u64) {
        let dt = now_us.saturating_sub(folded.at_us) as f64 / 1e6;
        let mut decay = [1.0; WINDOWS.len()];
        for (d, w) in decay.iter_mut().zip(WINDOWS) {
            *d = (-dt / w.seconds as f64).exp();
        }
        for (values, pending) in folded.values.iter_mut().zip(self.pending.iter()) {
            let added = pending.swap(0, Relaxed) as f64;
            for (v, d) in values.iter_mut().zip(decay) {
                *v = (*v + added) * d;
            }
        }
        folded.at_us = folded.at_us.max(now_us);
        self.last_fold_us.store(folded.at_us, Relaxed);
    }

    /// Per-second rates of every series at `now`, one entry per window.
    pub fn rates_at(&self, now: Instant) -> Vec<Rates> {
        let mut folded = self.folded.lock().unwrap_or_else(|p| p.into_inner());
        self.fold(&mut folded, self.micros(now));
        folded
            .values
            .iter()
            .map(|values| {
                let mut r = *values;
                for (x, w) in r.iter_mut().zip(WINDOWS) {
                    *x /= w.seconds as f64;
                }
                r
            })
            .collect()
    }

    /// Per-second rates of every series now.
    pub fn rates(&self) -> Vec<Rates> {
        self.rates_at(Instant::now())
    }
}

/// Decaying mean of a quantity recorded as a sum series and a count series:
/// rate(sum) / rate(count) per window, `None` where (almost) nothing was counted.
pub fn decaying_mean(sum: &Rates, count: &Rates, scale: f64) -> [Option<f64>; WINDOWS.len()] {
    let mut out = [None; WINDOWS.len()];
    for (i, o) in out.iter_mut().enumerate() {
        // Below 1e-9 events/s the window has effectively seen nothing.
        if count[i] > 1e-9 {
            *o = Some(sum[i] / count[i] / scale);
        }
    }
    out
}
