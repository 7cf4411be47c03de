//! Worker scoring and circuit breaking (DESIGN §8). Pure logic over a worker's measured
//! performance; the worker table calls it under a short per-worker lock.
//!
//! Score = expected completion time × price factor ÷ reputation, where
//! - expected completion time = (TTFT + expected tokens ÷ tokens/s) × (1 + running requests),
//!   from exponentially decaying averages of what the proxy measured on that worker;
//! - price factor = coefficient ÷ 1000 (cheaper wins when speed is similar);
//! - reputation = decaying success rate (a failing worker loses traffic before its breaker
//!   even opens).
//!
//! Lower is better. Scores within [`TIE_BAND`] of the best are ties broken at random, so idle
//! traffic spreads instead of pinning one worker, and [`EXPLORE`] of picks go to a random
//! eligible worker so that a worker whose speed changed is measured again.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Weight of a new sample in the decaying averages.
const ALPHA: f64 = 0.2;
/// Scores within this fraction of the best are ties.
pub(crate) const TIE_BAND: f64 = 0.10;
/// Fraction of picks made at random among eligible workers.
pub(crate) const EXPLORE: f64 = 0.05;
/// Tokens a request is expected to generate when scoring (a typical chat answer).
const EXPECTED_TOKENS: f64 = 128.0;
/// Added to every expected time: differences of a few milliseconds are measurement noise,
/// not speed, and must not pin all traffic on one of two equal workers.
const LATENCY_FLOOR_MS: f64 = 50.0;

/// Breaker settings (TOML `[routing]` of a proxy).
#[derive(Clone, Debug)]
pub struct RoutingConfig {
    /// Failures within `failure_window` that open a worker's breaker.
    pub failure_threshold: usize,
    pub failure_window: Duration,
    /// First cooldown; doubles after each failed probe up to `max_cooldown`.
    pub cooldown: Duration,
    pub max_cooldown: Duration,
    /// A worker's failures fade with this half-life while nothing new is learnt, so a
    /// worker that failed once is not shunned forever.
    pub reputation_half_life: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            failure_threshold: 3,
            failure_window: Duration::from_secs(30),
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(300),
            reputation_half_life: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Breaker {
    /// Normal traffic.
    Closed,
    /// Cooled down: no traffic until `cooldown_until`.
    Open,
    /// Cooldown over: one probe request at a time decides.
    HalfOpen,
}

/// What the proxy measured on one worker.
#[derive(Debug)]
pub(crate) struct Perf {
    pub ttft_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    /// Decaying success rate in [0, 1] as of `last_outcome`.
    pub success: f64,
    last_outcome: Option<Instant>,
    pub samples: u64,
    failures: VecDeque<Instant>,
    pub breaker: Breaker,
    cooldown_until: Option<Instant>,
    cooldown: Duration,
    probe_started: Option<Instant>,
}

/// How a request on a worker ended, as far as the worker's reputation goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Answered; with TTFT and decode speed when measurable.
    Success {
        ttft: Option<Duration>,
        tokens_per_s: Option<f64>,
    },
    /// The worker or its engine failed.
    Failure,
}

/// The inputs and result of scoring one candidate (shown in `/jsonstats`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Scored {
    pub worker: u64,
    pub active: u32,
    pub coefficient: u32,
    pub ttft_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub success: f64,
    pub expected_ms: f64,
    pub score: f64,
}

fn ewma(old: Option<f64>, sample: f64) -> f64 {
    old.map_or(sample, |o| o + ALPHA * (sample - o))
}

impl Perf {
    pub fn new(config: &RoutingConfig) -> Perf {
        Perf {
            ttft_ms: None,
            tokens_per_s: None,
            success: 1.0,
            last_outcome: None,
            samples: 0,
            failures: VecDeque::new(),
            breaker: Breaker::Closed,
            cooldown_until: None,
            cooldown: config.cooldown,
            probe_started: None,
        }
    }

    /// Whether the worker may take a request now. A half-open worker takes one probe at a
    /// time (a probe whose outcome never came back is retried after the cooldown).
    pub fn admit(&mut self, now: Instant) -> bool {
        match self.breaker {
            Breaker::Closed => true,
            Breaker::Open => {
                if self.cooldown_until.is_some_and(|t| now < t) {
                    return false;
                }
                self.breaker = Breaker::HalfOpen;
                self.probe_started = Some(now);
                true
            }
            Breaker::HalfOpen => match self.probe_started {
                Some(t) if now.duration_since(t) < self.cooldown => false,
                _ => {
                    self.probe_started = Some(now);
                    true
                }
            },
        }
    }

    /// Whether `admit` would say yes, without taking a probe.
    pub fn available(&self, now: Instant) -> bool {
        match self.breaker {
            Breaker::Closed => true,
            Breaker::Open => self.cooldown_until.is_none_or(|t| now >= t),
            Breaker::HalfOpen => self
                .probe_started
                .is_none_or(|t| now.duration_since(t) >= self.cooldown),
        }
    }

    /// The success rate now: the shortfall from 1 halves every `half_life` without news.
    pub fn reputation(&self, now: Instant, half_life: Duration) -> f64 {
        let Some(t) = self.last_outcome else {
            return self.success;
        };
        let halves = now.duration_since(t).as_secs_f64() / half_life.as_secs_f64().max(0.001);
        1.0 - (1.0 - self.success) * 0.5f64.powf(halves)
    }

    pub fn record(&mut self, outcome: Outcome, now: Instant, config: &RoutingConfig) {
        self.samples += 1;
        self.success = self.reputation(now, config.reputation_half_life);
        self.last_outcome = Some(now);
        match outcome {
            Outcome::Success { ttft, tokens_per_s } => {
                self.success = ewma(Some(self.success), 1.0);
                if let Some(t) = ttft {
                    self.ttft_ms = Some(ewma(self.ttft_ms, t.as_secs_f64() * 1000.0));
                }
                if let Some(tps) = tokens_per_s.filter(|t| t.is_finite() && *t > 0.0) {
                    self.tokens_per_s = Some(ewma(self.tokens_per_s, tps));
                }
                if self.breaker != Breaker::Closed {
                    tracing::info!("worker recovered: breaker closed");
                }
                self.breaker = Breaker::Closed;
                self.cooldown = config.cooldown;
                self.probe_started = None;
                self.failures.clear();
            }
            Outcome::Failure => {
                self.success = ewma(Some(self.success), 0.0);
                self.failures.push_back(now);
                while self
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > config.failure_window)
                {
                    self.failures.pop_front();
                }
                let trip = match self.breaker {
                    // A failed probe: cool down again, longer.
                    Breaker::HalfOpen => {
                        self.cooldown = (self.cooldown * 2).min(config.max_cooldown);
                        true
                    }
                    Breaker::Closed => self.failures.len() >= config.failure_threshold,
                    Breaker::Open => false,
                };
                if trip {
                    self.breaker = Breaker::Open;
                    self.cooldown_until = Some(now + self.cooldown);
                    self.probe_started = None;
                    self.failures.clear();
                    tracing::warn!(cooldown = ?self.cooldown, "worker failing: breaker open");
                }
            }
        }
    }

    /// Whether the breaker wants a probe now (cooled down, none in flight): such a worker
    /// gets the next request, or it could never prove it healed.
    pub fn wants_probe(&self, now: Instant) -> bool {
        self.breaker != Breaker::Closed && self.available(now)
    }

    /// Time until the breaker lets a probe through (0 when it does now).
    pub fn cooldown_left(&self, now: Instant) -> Duration {
        match (self.breaker, self.cooldown_until) {
            (Breaker::Open, Some(t)) => t.saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }
}

/// Scores a candidate. `fallback` fills unmeasured inputs (the best measured among the
/// candidates: an optimistic prior, so a new worker gets tried).
pub(crate) fn score(
    worker: u64,
    perf: &Perf,
    reputation: f64,
    active: u32,
    coefficient: u32,
    fallback: (f64, f64),
) -> Scored {
    let ttft = perf.ttft_ms.unwrap_or(fallback.0);
    let tps = perf.tokens_per_s.unwrap_or(fallback.1);
    let decode_ms = if tps > 0.0 {
        EXPECTED_TOKENS * 1000.0 / tps
    } else {
        0.0
    };
    let expected_ms = (ttft + decode_ms) * (1.0 + f64::from(active));
    let price = f64::from(coefficient.max(1)) / 1000.0;
    let score = (expected_ms + LATENCY_FLOOR_MS) * price / reputation.max(0.05);
    Scored {
        worker,
        active,
        coefficient,
        ttft_ms: perf.ttft_ms,
        tokens_per_s: perf.tokens_per_s,
        success: reputation,
        expected_ms,
        score,
    }
}

/// The optimistic prior for unmeasured inputs: the best measured TTFT and speed.
pub(crate) fn fallback(measured: impl Iterator<Item = (Option<f64>, Option<f64>)>) -> (f64, f64) {
    let mut ttft = f64::INFINITY;
    let mut tps: f64 = 0.0;
    for (t, s) in measured {
        if let Some(t) = t {
            ttft = ttft.min(t);
        }
        if let Some(s) = s {
            tps = tps.max(s);
        }
    }
    (if ttft.is_finite() { ttft } else { 0.0 }, tps)
}

/// Indices of the candidates within the tie band of the best score.
pub(crate) fn ties(scored: &[Scored]) -> Vec<usize> {
    let best = scored.iter().map(|s| s.score).fold(f64::INFINITY, f64::min);
    (0..scored.len())
        .filter(|&i| scored[i].score <= best * (1.0 + TIE_BAND))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RoutingConfig {
        RoutingConfig {
            failure_threshold: 3,
            failure_window: Duration::from_secs(30),
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(40),
            reputation_half_life: Duration::from_secs(60),
        }
    }

    fn ok(ms: u64) -> Outcome {
        Outcome::Success {
            ttft: Some(Duration::from_millis(ms)),
            tokens_per_s: Some(100.0),
        }
    }

    #[test]
    fn faster_cheaper_and_reliable_score_lower() {
        let c = cfg();
        let now = Instant::now();
        let mut fast = Perf::new(&c);
        let mut slow = Perf::new(&c);
        for _ in 0..5 {
            fast.record(ok(10), now, &c);
            slow.record(ok(200), now, &c);
        }
        let fb = fallback(
            [&fast, &slow]
                .into_iter()
                .map(|p| (p.ttft_ms, p.tokens_per_s)),
        );
        assert!(score(1, &fast, 1.0, 0, 1000, fb).score < score(2, &slow, 1.0, 0, 1000, fb).score);
        // Same speed: the cheaper wins, beyond the tie band.
        let a = score(1, &fast, 1.0, 0, 1000, fb);
        let b = score(2, &fast, 1.0, 0, 1500, fb);
        assert_eq!(ties(&[a, b]), vec![0]);
        // Load counts: a busy fast worker loses to an idle one of the same speed.
        assert!(score(1, &fast, 1.0, 3, 1000, fb).score > score(2, &fast, 1.0, 0, 1000, fb).score);
        // Unmeasured workers get the best measured values (tried, not starved).
        let new = Perf::new(&c);
        assert_eq!(
            score(3, &new, 1.0, 0, 1000, fb).score,
            score(1, &fast, 1.0, 0, 1000, fb).score
        );
        // Failures lower the reputation, which recovers while nothing new is learnt.
        fast.record(Outcome::Failure, now, &c);
        let hurt = fast.reputation(now, c.reputation_half_life);
        assert!(hurt < 1.0);
        let later = fast.reputation(now + Duration::from_secs(60), c.reputation_half_life);
        assert!((1.0 - later - (1.0 - hurt) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn breaker_opens_cools_down_probes_and_closes() {
        let c = cfg();
        let t0 = Instant::now();
        let mut p = Perf::new(&c);
        for i in 0..2 {
            p.record(Outcome::Failure, t0 + Duration::from_secs(i), &c);
        }
        assert_eq!(p.breaker, Breaker::Closed, "below the threshold");
        p.record(Outcome::Failure, t0 + Duration::from_secs(2), &c);
        assert_eq!(p.breaker, Breaker::Open);
        let t1 = t0 + Duration::from_secs(5);
        assert!(!p.available(t1) && !p.admit(t1));
        assert_eq!(p.cooldown_left(t1), Duration::from_secs(7));
        // Cooldown over: exactly one probe.
        let t2 = t0 + Duration::from_secs(13);
        assert!(p.admit(t2));
        assert_eq!(p.breaker, Breaker::HalfOpen);
        assert!(!p.admit(t2), "one probe at a time");
        // The probe fails: open again, twice as long.
        p.record(Outcome::Failure, t2, &c);
        assert_eq!(p.breaker, Breaker::Open);
        assert_eq!(p.cooldown_left(t2), Duration::from_secs(20));
        let t3 = t2 + Duration::from_secs(21);
        assert!(p.admit(t3));
        p.record(ok(5), t3, &c);
        assert_eq!(p.breaker, Breaker::Closed);
        assert!(p.admit(t3) && p.admit(t3));
    }

    #[test]
    fn failures_outside_the_window_do_not_trip() {
        let c = cfg();
        let t0 = Instant::now();
        let mut p = Perf::new(&c);
        for i in 0..5 {
            p.record(Outcome::Failure, t0 + Duration::from_secs(31 * i), &c);
        }
        assert_eq!(p.breaker, Breaker::Closed);
    }

    #[test]
    fn a_lost_probe_is_retried_after_the_cooldown() {
        let c = cfg();
        let t0 = Instant::now();
        let mut p = Perf::new(&c);
        for _ in 0..3 {
            p.record(Outcome::Failure, t0, &c);
        }
        let t1 = t0 + Duration::from_secs(10);
        assert!(p.admit(t1));
        assert!(!p.admit(t1 + Duration::from_secs(9)));
        assert!(p.admit(t1 + Duration::from_secs(10)));
    }
}
