//! Sending one op: chain refusals become one clear line naming the contract and what to do,
//! and an applied op is shown with its transfers and the new balances of what it touched.

use crate::amount::nano;
use crate::names::Names;
use crate::report::Report;
use crate::show::account_line;
use anyhow::{anyhow, Result};
use cocoon_chain::ledger::{Address, Op, World};
use cocoon_chain::{Chain, ChainError, TxRecord};
use serde_json::{json, Value};
use std::sync::Arc;

/// Submits `op`; `what` says what it does, for errors ("top up client contract 1a2b…").
pub fn submit(chain: &dyn Chain, op: Op, what: &str) -> Result<TxRecord> {
    chain.submit(op).map_err(|e| explain(what, e))
}

/// The world now, or a clear error.
pub fn world(chain: &dyn Chain) -> Result<Arc<World>> {
    chain
        .world()
        .map_err(|e| explain("read the chain state", e))
}

/// One line: what failed, why, and what to do.
pub fn explain(what: &str, e: ChainError) -> anyhow::Error {
    match e {
        ChainError::Rejected { reason, .. } => match hint(&reason) {
            Some(h) => anyhow!("cannot {what}: the chain refused it: {reason} ({h})"),
            None => anyhow!("cannot {what}: the chain refused it: {reason}"),
        },
        ChainError::Remote { url, message } => anyhow!(
            "cannot {what}: chain server {url} failed: {message} (is `cocoon chain serve` \
             running there? pick another with --chain URL, or a database with --db FILE)"
        ),
        other => anyhow!("cannot {what}: {other}"),
    }
}

/// What to do about a refusal, keyed by the ledger's messages (a remote chain only carries
/// the text, so the text is what both paths match on).
fn hint(reason: &str) -> Option<&'static str> {
    const HINTS: &[(&str, &str)] = &[
        ("stale voucher", "the contract already accepted this count or a higher one: get a newer voucher from the proxy"),
        ("signature does not verify", "the voucher was not signed by this contract's proxy key: it is forged, corrupted, or from another proxy"),
        ("is bound to contract", "the voucher belongs to another contract"),
        ("is not accepted here", "wrong kind of voucher for this command"),
        ("insufficient funds", "the paying account is short: fund it first (`faucet` on a devnet, or `transfer`)"),
        ("nothing to withdraw", "there is nothing above the locked stake (client) or no earned commission (proxy)"),
        ("is not the owner", "send it from the contract owner's wallet (--owner)"),
        ("is locked until", "wait for the unlock time; on a devnet, `advance SECS` moves the chain clock"),
        ("is not allowed in that state", "see the contract's state with `show`"),
        ("open client and", "close every client and last-pay every worker before completing the proxy's close"),
        ("is below the minimum", "use a larger amount"),
        ("amount must be positive", "use a nonzero amount"),
        ("already exists", "it is already deployed: see it with `show`"),
        ("no contract or account", "check the address: `balances` lists every contract"),
        ("belongs to proxy contract", "use the proxy contract this contract was deployed with"),
    ];
    HINTS
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map(|(_, h)| *h)
}

/// The report of an applied op: the op, its transfers, and the accounts it touched as they
/// stand now.
pub fn applied(record: &TxRecord, world: &World, names: &Names) -> Report {
    let op = serde_json::to_value(&record.op).unwrap_or(Value::Null);
    let name = op.get("op").and_then(Value::as_str).unwrap_or("op");
    let mut touched: Vec<Address> = Vec::new();
    let mut note = |a: Address| {
        if !touched.contains(&a) {
            touched.push(a);
        }
    };
    let mut report = Report::new(Value::Null);
    report.line(format!(
        "applied {name} as seq {} (block {}, chain time {})",
        record.seq, record.block, record.time
    ));
    if let Value::Object(fields) = &op {
        for (key, value) in fields.iter().filter(|(k, _)| *k != "op") {
            let shown = field(key, value, world, names, &mut note);
            report.kv(key, shown);
        }
    }
    // Mint and Transfer move coins inside the op itself, not as contract effects.
    match &record.op {
        Op::Mint { to, amount } => {
            report.line("transfers:");
            report.line(format!(
                "  {} minted -> {} [mint]",
                nano(u128::from(*amount)),
                names.label(world, to)
            ));
        }
        Op::Transfer { from, to, amount } => {
            report.line("transfers:");
            report.line(format!(
                "  {} {} -> {} [wallet]",
                nano(u128::from(*amount)),
                names.label(world, from),
                names.label(world, to)
            ));
        }
        _ if record.effects.transfers.is_empty() => {
            report.line("transfers: none (accounting inside the contracts only)");
        }
        _ => {
            report.line("transfers:");
        }
    }
    for t in &record.effects.transfers {
        note(t.from);
        note(t.to);
        let kind = serde_json::to_value(t.kind).unwrap_or(Value::Null);
        report.line(format!(
            "  {} {} -> {} [{}]",
            nano(u128::from(t.amount)),
            names.label(world, &t.from),
            names.label(world, &t.to),
            kind.as_str().unwrap_or("?")
        ));
    }
    report.line("now:");
    let mut balances = serde_json::Map::new();
    for a in &touched {
        report.line(format!("  {}", account_line(world, names, a)));
        balances.insert(a.to_hex(), json!(world.balance(a)));
    }
    report.json = json!({ "record": record, "balances": balances });
    report
}

/// One op field as text; addresses it names are noted as touched.
fn field(
    key: &str,
    value: &Value,
    world: &World,
    names: &Names,
    note: &mut impl FnMut(Address),
) -> String {
    match (key, value) {
        ("amount" | "stake" | "deposit", Value::Number(n)) => {
            n.as_u64().map_or(n.to_string(), |n| nano(u128::from(n)))
        }
        ("key" | "hash", v) => v.to_string(),
        (_, Value::String(s)) => match Address::from_hex(s) {
            Ok(a) => {
                note(a);
                names.label(world, &a)
            }
            Err(_) => s.clone(),
        },
        ("voucher", Value::Object(v)) => {
            let contract = v.get("contract").and_then(Value::as_str).unwrap_or("?");
            if let Ok(a) = Address::from_hex(contract) {
                note(a);
            }
            format!(
                "{} voucher for {contract}, cumulative {} tokens",
                v.get("op").and_then(Value::as_str).unwrap_or("?"),
                v.get("cumulative").map_or("?".into(), Value::to_string)
            )
        }
        ("anchor", Value::Object(v)) => {
            let proxy = v.get("proxy").and_then(Value::as_str).unwrap_or("?");
            if let Ok(a) = Address::from_hex(proxy) {
                note(a);
            }
            format!(
                "anchor of proxy {proxy}, seqno {}",
                v.get("seqno").map_or("?".into(), Value::to_string)
            )
        }
        (_, v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_get_a_hint_and_stay_one_line() {
        let e = explain(
            "pay out worker contract ab",
            ChainError::Rejected {
                reason: "stale voucher: cumulative 5 tokens is not above the 9 already accepted"
                    .into(),
                ledger: None,
            },
        )
        .to_string();
        assert!(
            e.starts_with("cannot pay out worker contract ab: the chain refused it: stale voucher")
        );
        assert!(e.contains("get a newer voucher"), "{e}");
        assert!(!e.contains('\n'));
        let e = explain(
            "read the chain state",
            ChainError::Remote {
                url: "http://x".into(),
                message: "connection refused".into(),
            },
        )
        .to_string();
        assert!(e.contains("cocoon chain serve"), "{e}");
    }
}
