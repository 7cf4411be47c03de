//! Pure settlement decisions of the money task (DESIGN §6, "Settlement cadence").

use std::time::Duration;
use tokio::time::Instant;

/// nanoTON of the deposit not yet spent: the balance minus what the proxy has served but
/// not charged on chain (`used_tokens` is the proxy's in-memory counter). Saturating.
pub fn unused_balance(balance: u64, tokens_charged: u64, used_tokens: u64, price: u64) -> u64 {
    let uncharged = u128::from(used_tokens.saturating_sub(tokens_charged));
    let owed = uncharged.saturating_mul(u128::from(price));
    u64::try_from(u128::from(balance).saturating_sub(owed)).unwrap_or(u64::MAX)
}

/// A client tops up when its unused balance falls under half its stake.
pub fn top_up_due(
    balance: u64,
    stake: u64,
    tokens_charged: u64,
    used_tokens: u64,
    price: u64,
) -> bool {
    unused_balance(balance, tokens_charged, used_tokens, price) < stake / 2
}

/// Tracks how long the held charge voucher has been ahead of the chain. The proxy is
/// expected to submit charges itself; when it lags by `lag` or more, the client submits the
/// voucher it holds (a charge raises the credit the proxy extends to it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChargeLag {
    behind_since: Option<Instant>,
}

impl ChargeLag {
    /// Observes the held voucher's count against the contract's `tokens_charged` at `now`;
    /// true when the client should submit its voucher now.
    pub fn observe(
        &mut self,
        held: Option<u64>,
        tokens_charged: u64,
        now: Instant,
        lag: Duration,
    ) -> bool {
        match held {
            Some(held) if held > tokens_charged => {
                let since = *self.behind_since.get_or_insert(now);
                now.saturating_duration_since(since) >= lag
            }
            _ => {
                self.behind_since = None;
                false
            }
        }
    }

    /// The voucher was submitted (or found stale): start over.
    pub fn reset(&mut self) {
        self.behind_since = None;
    }

    pub fn behind_since(&self) -> Option<Instant> {
        self.behind_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_balance_saturates() {
        assert_eq!(unused_balance(1000, 10, 30, 20), 600);
        assert_eq!(unused_balance(1000, 30, 30, 20), 1000);
        // The chain may be ahead of a lagging in-memory report: nothing owed.
        assert_eq!(unused_balance(1000, 40, 30, 20), 1000);
        assert_eq!(unused_balance(1000, 0, 51, 20), 0);
        assert_eq!(unused_balance(u64::MAX, 0, u64::MAX, u64::MAX), 0);
    }

    #[test]
    fn top_up_below_half_the_stake() {
        // stake 1000: top up when unused < 500.
        assert!(!top_up_due(1000, 1000, 0, 25, 20)); // unused 500
        assert!(top_up_due(1000, 1000, 0, 26, 20)); // unused 480
        assert!(!top_up_due(1000, 1000, 10, 26, 20)); // charged 10: unused 680
        assert!(top_up_due(0, 1000, 0, 0, 20));
        assert!(
            !top_up_due(0, 0, 0, 0, 20),
            "no stake, nothing to keep above"
        );
    }

    #[test]
    fn charge_after_lag_only_while_behind() {
        let t0 = Instant::now();
        let lag = Duration::from_secs(5);
        let mut c = ChargeLag::default();
        assert!(!c.observe(None, 0, t0, lag));
        assert!(!c.observe(Some(10), 10, t0, lag), "chain has it");
        assert!(!c.observe(Some(20), 10, t0, lag));
        assert!(!c.observe(Some(30), 10, t0 + Duration::from_secs(4), lag));
        // Newer vouchers do not restart the clock: the chain has been behind since t0.
        assert!(c.observe(Some(40), 25, t0 + lag, lag));
        // The proxy caught up: start over.
        assert!(!c.observe(Some(40), 40, t0 + Duration::from_secs(6), lag));
        assert_eq!(c.behind_since(), None);
        assert!(!c.observe(Some(50), 40, t0 + Duration::from_secs(7), lag));
        assert!(c.observe(Some(50), 40, t0 + Duration::from_secs(12), lag));
        c.reset();
        assert!(!c.observe(Some(50), 40, t0 + Duration::from_secs(13), lag));
        // Zero lag: at once.
        assert!(ChargeLag::default().observe(Some(1), 0, t0, Duration::ZERO));
    }
}
