//! Client contract commands: deploy, top up, withdraw, stake, close, charge, show.

use super::{load_voucher, send, voucher_op_name};
use crate::amount::{nano, Amount};
use crate::args::ContractAt;
use crate::names::{kind, parse_address, resolve_proxy, Names};
use crate::report::Report;
use crate::submit::{applied, submit, world};
use anyhow::{anyhow, bail, Result};
use cocoon_chain::ledger::{Address, ClientContract, ContractState, Op, VoucherOp, World};
use cocoon_chain::Chain;
use serde_json::json;

/// Owner, proxy and client contract address of `at` (the contract may not exist yet).
fn client_target(world: &World, at: &ContractAt) -> Result<(Address, Address, Address)> {
    let owner = parse_address(&at.owner)?;
    let proxy = resolve_proxy(world, &at.proxy)?;
    Ok((owner, proxy, Address::client_contract(&proxy, &owner)))
}

fn client<'w>(world: &'w World, at: &ContractAt) -> Result<(Address, &'w ClientContract)> {
    let (owner, proxy, addr) = client_target(world, at)?;
    let c = world.clients.get(&addr).ok_or_else(|| {
        anyhow!(
            "no client contract of {} at proxy contract {proxy} (deploy one with `client \
             deploy --owner {} --proxy {proxy} DEPOSIT`)",
            at.owner,
            at.owner
        )
    })?;
    Ok((owner, c))
}

pub fn client_deploy(
    chain: &dyn Chain,
    names: &Names,
    at: &ContractAt,
    deposit: Amount,
) -> Result<Report> {
    let world = world(chain)?;
    let (owner, proxy, addr) = client_target(&world, at)?;
    if let Some(c) = world.clients.get(&addr) {
        bail!(
            "client contract {addr} of {} at proxy contract {proxy} already exists ({:?}): \
             use `client top-up` to add to it",
            at.owner,
            c.state
        );
    }
    let what = format!(
        "deploy the client contract of {} at proxy {proxy}",
        at.owner
    );
    let mut r = send(
        chain,
        names,
        Op::DeployClient {
            owner,
            proxy,
            deposit: deposit.0,
        },
        &what,
    )?;
    r.line(format!("client contract: {addr}"));
    r.json["client"] = json!(addr);
    Ok(r)
}

pub fn client_top_up(
    chain: &dyn Chain,
    names: &Names,
    at: &ContractAt,
    amount: Amount,
) -> Result<Report> {
    let world = world(chain)?;
    let (owner, c) = client(&world, at)?;
    let what = format!("top up client contract {} with {amount}", c.address);
    let op = Op::ClientTopUp {
        sender: owner,
        client: c.address,
        amount: amount.0,
    };
    send(chain, names, op, &what)
}

pub fn client_withdraw(chain: &dyn Chain, names: &Names, at: &ContractAt) -> Result<Report> {
    let world = world(chain)?;
    let (owner, c) = client(&world, at)?;
    let what = format!("withdraw from client contract {}", c.address);
    let op = Op::ClientWithdraw {
        sender: owner,
        client: c.address,
    };
    send(chain, names, op, &what)
}

pub fn client_stake(
    chain: &dyn Chain,
    names: &Names,
    at: &ContractAt,
    stake: Amount,
) -> Result<Report> {
    let world = world(chain)?;
    let (owner, c) = client(&world, at)?;
    let what = format!(
        "raise the stake of client contract {} to {stake}",
        c.address
    );
    let op = Op::ClientIncreaseStake {
        sender: owner,
        client: c.address,
        stake: stake.0,
    };
    let mut r = send(chain, names, op, &what)?;
    r.line(format!(
        "stake raised from {} to {stake}",
        nano(u128::from(c.stake))
    ));
    Ok(r)
}

/// First call: starts closing; a later one, once unlocked: forces the refund.
pub fn client_close(chain: &dyn Chain, names: &Names, at: &ContractAt) -> Result<Report> {
    let world = world(chain)?;
    let (owner, c) = client(&world, at)?;
    let now = chain
        .now()
        .map_err(|e| crate::submit::explain("read the chain time", e))?;
    let addr = c.address;
    match c.state {
        ContractState::Closed => bail!("client contract {addr} is already closed"),
        ContractState::Closing if now < c.unlock_at => bail!(
            "client contract {addr} is closing and locked until chain time {} ({} s from now): \
             run `client close` again after that (on a devnet, `advance {}` gets there), \
             unless the proxy grants the refund first",
            c.unlock_at,
            c.unlock_at - now,
            c.unlock_at - now
        ),
        _ => {}
    }
    let starting = c.state == ContractState::Open;
    let what = if starting {
        format!("start closing client contract {addr}")
    } else {
        format!("force the refund of client contract {addr}")
    };
    let op = Op::ClientRequestClose {
        sender: owner,
        client: addr,
    };
    let record = submit(chain, op, &what)?;
    let after = crate::submit::world(chain)?;
    let mut r = applied(&record, &after, names);
    let refunded = record.effects.paid_to(&owner);
    let c = after.clients.get(&addr);
    if starting {
        let unlock_at = c.map_or(0, |c| c.unlock_at);
        let stake = c.map_or(0, |c| c.balance);
        r.line(format!(
            "closing started: {} above the stake refunded now; the remaining {} unlocks at \
             chain time {unlock_at} (in {} s): the proxy charges what it served and grants the \
             refund, or run `client close` again after that to force it",
            nano(u128::from(refunded)),
            nano(u128::from(stake)),
            unlock_at.saturating_sub(record.time)
        ));
        r.json["closing"] =
            json!({ "started": true, "unlock_at": unlock_at, "refunded": refunded });
    } else {
        r.line(format!(
            "closed: the proxy stayed silent, so the remaining {} was refunded by force",
            nano(u128::from(refunded))
        ));
        r.json["closing"] = json!({ "started": false, "closed": true, "refunded": refunded });
    }
    Ok(r)
}

pub fn client_show(chain: &dyn Chain, names: &Names, at: &ContractAt) -> Result<Report> {
    let world = world(chain)?;
    let (_, c) = client(&world, at)?;
    crate::show::show(&world, names, &c.address.to_hex())
}

pub fn client_charge(chain: &dyn Chain, names: &Names, voucher: &str) -> Result<Report> {
    let voucher = load_voucher(voucher)?;
    let world = world(chain)?;
    let client = voucher.contract;
    if !world.clients.contains_key(&client) {
        bail!(
            "the voucher is for {} {client}, not a client contract{}",
            kind(&world, &client),
            if world.workers.contains_key(&client) {
                ": submit worker vouchers with `worker payout`"
            } else {
                ""
            }
        );
    }
    let op = match voucher.op {
        VoucherOp::ClientCharge => Op::ClientCharge { client, voucher },
        VoucherOp::ClientGrantRefund => Op::ClientGrantRefund { client, voucher },
        other => bail!(
            "a {} voucher cannot charge a client: submit it with `worker payout`",
            voucher_op_name(other)
        ),
    };
    let what = format!(
        "apply the {} voucher (cumulative {} tokens) to client contract {client}",
        voucher_op_name(voucher.op),
        voucher.cumulative
    );
    send(chain, names, op, &what)
}
