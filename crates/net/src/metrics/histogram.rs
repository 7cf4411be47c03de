//! A fixed-bucket histogram of atomics (no lock, no allocation per observation).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Time to first token, seconds.
pub const TTFT_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Whole request, seconds.
pub const DURATION_BOUNDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Decode speed, completion tokens per second.
pub const TOKENS_PER_SECOND_BOUNDS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// Sums are kept in millionths of the unit (exact integer adds).
const SUM_SCALE: f64 = 1e6;

#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (`v ≤ bounds[i]`), plus one for above the last bound.
    counts: Box<[AtomicU64]>,
    sum_micro: AtomicU64,
}

/// A consistent-enough copy for rendering.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [f64],
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
        }
    }

    /// Records one value (negative and NaN values count as 0).
    pub fn observe(&self, value: f64) {
        let value = if value.is_nan() { 0.0 } else { value.max(0.0) };
        let bucket = self.bounds.partition_point(|b| *b < value);
        self.counts[bucket].fetch_add(1, Relaxed);
        // `as` saturates: an absurd value cannot wrap the sum.
        self.sum_micro
            .fetch_add((value * SUM_SCALE) as u64, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: self.sum_micro.load(Relaxed) as f64 / SUM_SCALE,
        }
    }
}
