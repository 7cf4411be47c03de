//! Commands that send an op: checked against the current state first, so that the common
//! mistakes (no such contract, wrong kind of voucher, still locked) get a precise message
//! before anything is sent; the chain's own refusals are explained by `submit`.

mod client;
mod proxy;
mod worker;

pub use client::*;
pub use proxy::*;
pub use worker::*;

use crate::amount::Amount;
use crate::names::{kind, parse_address, Names};
use crate::report::Report;
use crate::submit::{applied, submit, world};
use anyhow::{anyhow, bail, Context, Result};
use cocoon_chain::ledger::{Address, Op, SignedVoucher, VoucherOp, World};
use cocoon_chain::{Chain, ChainError};
use serde_json::json;

/// Sends `op` and reports it.
pub(crate) fn send(chain: &dyn Chain, names: &Names, op: Op, what: &str) -> Result<Report> {
    let record = submit(chain, op, what)?;
    let world = world(chain)?;
    Ok(applied(&record, &world, names))
}

pub(crate) fn require_wallet(world: &World, s: &str, role: &str) -> Result<Address> {
    let a = parse_address(s)?;
    if kind(world, &a) != "wallet" {
        bail!(
            "{role} {a} is a {}, not a wallet: contracts are funded with `client top-up` / \
             `proxy stake`",
            kind(world, &a)
        );
    }
    Ok(a)
}

pub fn faucet(chain: &dyn Chain, names: &Names, to: &str, amount: Amount) -> Result<Report> {
    let world = world(chain)?;
    let to = require_wallet(&world, to, "faucet target")?;
    let what = format!("mint {amount} to {}", names.label(&world, &to));
    send(
        chain,
        names,
        Op::Mint {
            to,
            amount: amount.0,
        },
        &what,
    )
}

pub fn transfer(
    chain: &dyn Chain,
    names: &Names,
    from: &str,
    to: &str,
    amount: Amount,
) -> Result<Report> {
    let world = world(chain)?;
    let from = require_wallet(&world, from, "sender")?;
    let to = require_wallet(&world, to, "recipient")?;
    let what = format!(
        "transfer {amount} from {} to {}",
        names.label(&world, &from),
        names.label(&world, &to)
    );
    send(
        chain,
        names,
        Op::Transfer {
            from,
            to,
            amount: amount.0,
        },
        &what,
    )
}

/// A signed voucher given as JSON or @FILE (`@-`: standard input).
pub fn load_voucher(arg: &str) -> Result<SignedVoucher> {
    let text = match arg.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin()).context("reading the voucher")?,
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read voucher file {path}"))?,
        None => arg.to_string(),
    };
    serde_json::from_str(text.trim()).map_err(|e| {
        anyhow!(
            "bad voucher: {e} (expected the proxy's JSON: {{\"op\": \"worker_payout\", \
             \"contract\": HEX, \"cumulative\": N, \"signature\": HEX}}, or @FILE)"
        )
    })
}

pub(crate) fn voucher_op_name(op: VoucherOp) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{op:?}"))
}

pub fn advance(chain: &dyn Chain, secs: u64) -> Result<Report> {
    let tip = chain
        .advance(secs)
        .map_err(|e: ChainError| crate::submit::explain("advance the chain clock", e))?;
    let mut r = Report::new(json!(tip));
    r.line(format!(
        "chain time is now {} (moved {secs} s); last op seq {}, block {}",
        tip.now, tip.seq, tip.block
    ));
    Ok(r)
}
