//! `cocoon client estimate`: what a workload costs per day at current prices, and the stake
//! a client needs (developer onboarding, issue 7).

use anyhow::{Context, Result};
use cocoon_chain::ledger::{adjusted, RootParams};
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct EstimateArgs {
    /// Model the app will call (used to read live worker coefficients from `--api`).
    #[arg(long)]
    model: String,
    #[arg(long)]
    requests_per_day: u64,
    #[arg(long)]
    avg_prompt_tokens: u64,
    #[arg(long)]
    avg_completion_tokens: u64,
    /// Chain to read root prices from (`cocoon chain serve` or `cocoon dev`); unreachable =
    /// the default prices, said so in the output.
    #[arg(long, default_value = "http://127.0.0.1:11500")]
    chain: String,
    /// A running client's API base URL, to read the model's live worker coefficients
    /// (e.g. http://127.0.0.1:10000/v1). Without it, or if unreachable: `--coefficient`.
    #[arg(long)]
    api: Option<String>,
    /// Worker coefficient (×1000) to assume when no live one is read.
    #[arg(long, default_value_t = 1000)]
    coefficient: u32,
}

/// The numbers of an estimate, in nanoTON.
#[derive(Debug, PartialEq, Eq)]
pub struct Estimate {
    pub per_request: u64,
    pub per_day: u128,
    /// About ten minutes of usage, at least the registry's minimum client stake.
    pub stake: u128,
}

pub fn estimate(
    params: &RootParams,
    coefficient: u32,
    requests_per_day: u64,
    prompt: u64,
    completion: u64,
) -> Estimate {
    let adj = adjusted(prompt, coefficient, params.prompt_multiplier).saturating_add(adjusted(
        completion,
        coefficient,
        params.completion_multiplier,
    ));
    let per_request = adj.saturating_mul(params.price_per_token);
    let per_day = u128::from(per_request) * u128::from(requests_per_day);
    let ten_minutes = per_day * 10 / (24 * 60);
    Estimate {
        per_request,
        per_day,
        stake: ten_minutes.max(u128::from(params.min_client_stake)),
    }
}

fn ton(nano: u128) -> String {
    format!("{}.{:09} TON", nano / 1_000_000_000, nano % 1_000_000_000)
}

/// Live coefficients of `model` from a client's `/v1/models`: (min, max).
async fn live_coefficients(api: &str, model: &str) -> Result<Option<(u32, u32)>> {
    let url = format!("{}/models", api.trim_end_matches('/'));
    let body: serde_json::Value = async { reqwest::get(&url).await?.json().await }
        .await
        .with_context(|| format!("cannot read {url}"))?;
    Ok(body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == model && m["workers"].as_u64().unwrap_or(0) > 0)
        .and_then(|m| {
            let lo = u32::try_from(m["min_coefficient"].as_u64()?).ok()?;
            let hi = u32::try_from(m["max_coefficient"].as_u64()?).ok()?;
            Some((lo, hi))
        }))
}

pub async fn run(args: &EstimateArgs) -> Result<String> {
    let mut out = String::new();
    let url = args.chain.clone();
    // The chain client is blocking (its own runtime): keep it off this one.
    let read = tokio::task::spawn_blocking(move || {
        cocoon_chain::RemoteChain::connect(&url)
            .map(|c| cocoon_chain::Chain::registry(c.as_ref()).params.clone())
    })
    .await?;
    let params = match read {
        Ok(params) => {
            writeln!(out, "prices: from the chain at {}", args.chain)?;
            params
        }
        Err(e) => {
            writeln!(
                out,
                "prices: registry defaults (chain {} unreachable: {e})",
                args.chain
            )?;
            RootParams::default()
        }
    };
    let (lo, hi) = match &args.api {
        Some(api) => match live_coefficients(api, &args.model).await {
            Ok(Some(c)) => {
                writeln!(
                    out,
                    "coefficients: live workers of {:?}: {}–{}",
                    args.model, c.0, c.1
                )?;
                c
            }
            Ok(None) => {
                writeln!(
                    out,
                    "coefficients: no live worker serves {:?}; assuming {}",
                    args.model, args.coefficient
                )?;
                (args.coefficient, args.coefficient)
            }
            Err(e) => {
                writeln!(out, "coefficients: {e:#}; assuming {}", args.coefficient)?;
                (args.coefficient, args.coefficient)
            }
        },
        None => (args.coefficient, args.coefficient),
    };
    writeln!(
        out,
        "workload: {} requests/day × ({} prompt + {} completion tokens), model {:?}",
        args.requests_per_day, args.avg_prompt_tokens, args.avg_completion_tokens, args.model
    )?;
    for (label, c) in [("cheapest worker", lo), ("dearest worker", hi)] {
        let e = estimate(
            &params,
            c,
            args.requests_per_day,
            args.avg_prompt_tokens,
            args.avg_completion_tokens,
        );
        writeln!(
            out,
            "{label} (coefficient {c}): {} nanoTON per request, {} per day ({}), stake {} (≈10 min of usage, at least the {} minimum)",
            e.per_request,
            e.per_day,
            ton(e.per_day),
            ton(e.stake),
            ton(u128::from(params.min_client_stake)),
        )?;
        if lo == hi {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_a_workload_and_floors_the_stake() {
        let p = RootParams::default();
        // 100 prompt ×1 + 50 completion ×4 = 300 adjusted tokens × 20 nanoTON.
        let e = estimate(&p, 1000, 1_440, 100, 50);
        assert_eq!(e.per_request, 300 * 20);
        assert_eq!(e.per_day, 1_440 * 6_000);
        // Ten minutes is 60,000 nanoTON: below the 1 TON minimum stake.
        assert_eq!(e.stake, u128::from(p.min_client_stake));
        // A heavy workload needs more than the minimum; a dearer worker costs more.
        let heavy = estimate(&p, 2000, 100_000_000, 1_000, 1_000);
        assert_eq!(heavy.stake, heavy.per_day * 10 / 1440);
        assert!(heavy.stake > u128::from(p.min_client_stake));
        assert_eq!(ton(1_500_000_000), "1.500000000 TON");
    }
}
