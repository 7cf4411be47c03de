//! Proxy contract commands sent by its owner (withdraw, close, complete close), stake from
//! any wallet, show.

use super::{require_wallet, send};
use crate::amount::Amount;
use crate::args::ContractAt;
use crate::names::{parse_address, resolve_proxy, Names};
use crate::report::Report;
use crate::submit::{applied, submit, world};
use anyhow::Result;
use cocoon_chain::ledger::Op;
use cocoon_chain::Chain;
use serde_json::json;

/// The proxy ops sent by its owner.
#[derive(Clone, Copy, Debug)]
pub enum ProxyAction {
    Withdraw,
    Close,
    CompleteClose,
}

pub fn proxy_action(
    chain: &dyn Chain,
    names: &Names,
    at: &ContractAt,
    action: ProxyAction,
) -> Result<Report> {
    let world = world(chain)?;
    let sender = parse_address(&at.owner)?;
    let proxy = resolve_proxy(&world, &at.proxy)?;
    let (op, what) = match action {
        ProxyAction::Withdraw => (
            Op::ProxyWithdraw { sender, proxy },
            format!("withdraw the commission of proxy contract {proxy}"),
        ),
        ProxyAction::Close => (
            Op::ProxyRequestClose { sender, proxy },
            format!("start closing proxy contract {proxy}"),
        ),
        ProxyAction::CompleteClose => (
            Op::ProxyCompleteClose { sender, proxy },
            format!("complete the close of proxy contract {proxy}"),
        ),
    };
    let record = submit(chain, op, &what)?;
    let after = crate::submit::world(chain)?;
    let mut r = applied(&record, &after, names);
    if let (ProxyAction::Close, Some(p)) = (action, after.proxies.get(&proxy)) {
        r.line(format!(
            "closing: no new clients or workers; complete the close at chain time {} (in {} s) \
             once every client is closed and every worker last-paid",
            p.unlock_at,
            p.unlock_at.saturating_sub(record.time)
        ));
        r.json["unlock_at"] = json!(p.unlock_at);
    }
    Ok(r)
}

pub fn proxy_stake(
    chain: &dyn Chain,
    names: &Names,
    proxy: &str,
    from: &str,
    amount: Amount,
) -> Result<Report> {
    let world = world(chain)?;
    let sender = require_wallet(&world, from, "sender")?;
    let proxy = resolve_proxy(&world, proxy)?;
    let what = format!("add {amount} to the stake of proxy contract {proxy}");
    send(
        chain,
        names,
        Op::ProxyIncreaseStake {
            sender,
            proxy,
            amount: amount.0,
        },
        &what,
    )
}

pub fn proxy_show(chain: &dyn Chain, names: &Names, proxy: &str) -> Result<Report> {
    let world = world(chain)?;
    let proxy = resolve_proxy(&world, proxy)?;
    crate::show::show(&world, names, &proxy.to_hex())
}
