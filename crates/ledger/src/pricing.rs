//! Adjusted tokens and prices.
//!
//! `adj(n, class) = n × coefficient/1000 × multiplier(class)/10000`, truncated per class, with
//! prompt = prompt − cached and completion = completion − reasoning. Integer arithmetic in
//! u128 keeps the truncation exact (no floating point rounding drift).

use serde::{Deserialize, Serialize};

/// A coefficient of 1000 means 1.0× the base price.
pub const COEFFICIENT_ONE: u32 = 1000;
/// A multiplier of 10000 means 1.0×.
pub const MULTIPLIER_ONE: u32 = 10_000;

/// Root-contract pricing parameters (the part of the registry the proxy prices with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootParams {
    /// nanoTON a client pays per adjusted token.
    pub price_per_token: u64,
    /// nanoTON a worker earns per adjusted token; the rest is the proxy's commission.
    pub worker_fee_per_token: u64,
    pub prompt_multiplier: u32,
    pub cached_multiplier: u32,
    pub completion_multiplier: u32,
    pub reasoning_multiplier: u32,
    pub min_client_stake: u64,
    pub min_proxy_stake: u64,
    pub client_delay_before_close_secs: u64,
    pub proxy_delay_before_close_secs: u64,
}

impl Default for RootParams {
    fn default() -> Self {
        RootParams {
            price_per_token: 20,
            worker_fee_per_token: 16,
            prompt_multiplier: MULTIPLIER_ONE,
            cached_multiplier: MULTIPLIER_ONE / 10,
            completion_multiplier: 4 * MULTIPLIER_ONE,
            reasoning_multiplier: 4 * MULTIPLIER_ONE,
            min_client_stake: 1_000_000_000,
            min_proxy_stake: 1_000_000_000,
            client_delay_before_close_secs: 300,
            proxy_delay_before_close_secs: 600,
        }
    }
}

/// The four billed token classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenClass {
    Prompt,
    Cached,
    Completion,
    Reasoning,
}

/// Raw token counts as an engine reports them (cached ⊆ prompt, reasoning ⊆ completion).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    pub prompt: u64,
    pub cached: u64,
    pub completion: u64,
    pub reasoning: u64,
}

/// What one request costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub prompt_adjusted: u64,
    pub completion_adjusted: u64,
    pub prompt_cost: u64,
    pub completion_cost: u64,
    pub total_cost: u64,
    pub worker_earning: u64,
}

impl Charge {
    pub fn adjusted_tokens(&self) -> u64 {
        self.prompt_adjusted
            .saturating_add(self.completion_adjusted)
    }
}

/// Adjusted tokens for `n` tokens of one class at `coefficient` (×1000) and `multiplier` (×10000).
pub fn adjusted(n: u64, coefficient: u32, multiplier: u32) -> u64 {
    let scaled = u128::from(n) * u128::from(coefficient) * u128::from(multiplier);
    let value = scaled / (u128::from(COEFFICIENT_ONE) * u128::from(MULTIPLIER_ONE));
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl RootParams {
    pub fn multiplier(&self, class: TokenClass) -> u32 {
        match class {
            TokenClass::Prompt => self.prompt_multiplier,
            TokenClass::Cached => self.cached_multiplier,
            TokenClass::Completion => self.completion_multiplier,
            TokenClass::Reasoning => self.reasoning_multiplier,
        }
    }

    /// Prices a request from the engine's usage at the worker's coefficient.
    pub fn charge(&self, usage: TokenCounts, coefficient: u32) -> Charge {
        let cached = usage.cached.min(usage.prompt);
        let reasoning = usage.reasoning.min(usage.completion);
        let adj = |n, class| adjusted(n, coefficient, self.multiplier(class));
        let prompt_adjusted = adj(usage.prompt - cached, TokenClass::Prompt)
            .saturating_add(adj(cached, TokenClass::Cached));
        let completion_adjusted = adj(usage.completion - reasoning, TokenClass::Completion)
            .saturating_add(adj(reasoning, TokenClass::Reasoning));
        let prompt_cost = prompt_adjusted.saturating_mul(self.price_per_token);
        let completion_cost = completion_adjusted.saturating_mul(self.price_per_token);
        let total_adjusted = prompt_adjusted.saturating_add(completion_adjusted);
        Charge {
            prompt_adjusted,
            completion_adjusted,
            prompt_cost,
            completion_cost,
            total_cost: prompt_cost.saturating_add(completion_cost),
            worker_earning: total_adjusted.saturating_mul(self.worker_fee_per_token),
        }
    }

    /// Worst-case adjusted tokens of a request before it runs: every prompt token at the
    /// prompt multiplier and every completion token at the dearer of completion/reasoning,
    /// all at the client's `max_coefficient`.
    pub fn reservation_tokens(
        &self,
        prompt_estimate: u64,
        max_tokens: u64,
        max_coefficient: u32,
    ) -> u64 {
        let prompt_mult = self.prompt_multiplier.max(self.cached_multiplier);
        let completion_mult = self.completion_multiplier.max(self.reasoning_multiplier);
        adjusted(prompt_estimate, max_coefficient, prompt_mult).saturating_add(adjusted(
            max_tokens,
            max_coefficient,
            completion_mult,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_each_class_separately() {
        let p = RootParams {
            price_per_token: 10,
            worker_fee_per_token: 7,
            prompt_multiplier: 15_000,
            cached_multiplier: 5_000,
            completion_multiplier: 15_000,
            reasoning_multiplier: 15_000,
            ..RootParams::default()
        };
        // prompt 3 uncached ×1.5 = 4.5 → 4; cached 1 ×0.5 = 0.5 → 0;
        // completion 3 ×1.5 = 4.5 → 4; reasoning 1 ×1.5 = 1.5 → 1.
        let c = p.charge(
            TokenCounts {
                prompt: 4,
                cached: 1,
                completion: 4,
                reasoning: 1,
            },
            1000,
        );
        assert_eq!(c.prompt_adjusted, 4);
        assert_eq!(c.completion_adjusted, 5);
        assert_eq!(c.total_cost, 90);
        assert_eq!(c.worker_earning, 63);
    }

    #[test]
    fn coefficient_scales_price() {
        let p = RootParams::default();
        let base = p.charge(
            TokenCounts {
                prompt: 100,
                cached: 0,
                completion: 100,
                reasoning: 0,
            },
            1000,
        );
        let double = p.charge(
            TokenCounts {
                prompt: 100,
                cached: 0,
                completion: 100,
                reasoning: 0,
            },
            2000,
        );
        assert_eq!(double.total_cost, base.total_cost * 2);
    }

    #[test]
    fn inconsistent_usage_does_not_underflow() {
        let p = RootParams::default();
        let c = p.charge(
            TokenCounts {
                prompt: 1,
                cached: 5,
                completion: 1,
                reasoning: 9,
            },
            1000,
        );
        assert!(c.total_cost > 0);
    }

    #[test]
    fn reservation_covers_any_usage_within_bounds() {
        let p = RootParams::default();
        let r = p.reservation_tokens(50, 100, 1500);
        for cached in [0, 10, 50] {
            for reasoning in [0, 30, 100] {
                let c = p.charge(
                    TokenCounts {
                        prompt: 50,
                        cached,
                        completion: 100,
                        reasoning,
                    },
                    1500,
                );
                assert!(c.adjusted_tokens() <= r);
            }
        }
    }
}
