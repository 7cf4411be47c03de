//! Worker contract commands: deploy, payout (a proxy-signed voucher), show.

use super::{load_voucher, send, voucher_op_name};
use crate::amount::nano;
use crate::args::ContractAt;
use crate::names::{kind, parse_address, resolve_proxy, Names};
use crate::report::Report;
use crate::submit::{applied, submit, world};
use anyhow::{anyhow, bail, Result};
use cocoon_chain::ledger::{Address, Op, VoucherOp, WorkerContract, World};
use cocoon_chain::Chain;
use serde_json::json;

fn worker<'w>(world: &'w World, at: &ContractAt) -> Result<&'w WorkerContract> {
    let owner = parse_address(&at.owner)?;
    let proxy = resolve_proxy(world, &at.proxy)?;
    let addr = Address::worker_contract(&proxy, &owner);
    world.workers.get(&addr).ok_or_else(|| {
        anyhow!(
            "no worker contract of {} at proxy contract {proxy} (deploy one with `worker \
             deploy --owner {} --proxy {proxy}`)",
            at.owner,
            at.owner
        )
    })
}

pub fn worker_deploy(chain: &dyn Chain, names: &Names, at: &ContractAt) -> Result<Report> {
    let world = world(chain)?;
    let owner = parse_address(&at.owner)?;
    let proxy = resolve_proxy(&world, &at.proxy)?;
    let addr = Address::worker_contract(&proxy, &owner);
    if world.workers.contains_key(&addr) {
        bail!(
            "worker contract {addr} of {} at proxy contract {proxy} already exists",
            at.owner
        );
    }
    let what = format!(
        "deploy the worker contract of {} at proxy {proxy}",
        at.owner
    );
    let mut r = send(chain, names, Op::DeployWorker { owner, proxy }, &what)?;
    r.line(format!("worker contract: {addr}"));
    r.json["worker"] = json!(addr);
    Ok(r)
}

pub fn worker_payout(chain: &dyn Chain, names: &Names, voucher: &str) -> Result<Report> {
    let voucher = load_voucher(voucher)?;
    let world = world(chain)?;
    let worker = voucher.contract;
    let Some(w) = world.workers.get(&worker) else {
        bail!(
            "the voucher is for {} {worker}, not a worker contract{}",
            kind(&world, &worker),
            if world.clients.contains_key(&worker) {
                ": submit client vouchers with `client charge`"
            } else {
                ": check that the worker contract is deployed (`worker deploy`)"
            }
        );
    };
    let op = match voucher.op {
        VoucherOp::WorkerPayout => Op::WorkerPayout { worker, voucher },
        VoucherOp::WorkerLastPayout => Op::WorkerLastPayout { worker, voucher },
        other => bail!(
            "a {} voucher cannot pay a worker: submit it with `client charge`",
            voucher_op_name(other)
        ),
    };
    let what = format!(
        "pay out worker contract {worker} (proxy {}) up to {} tokens",
        w.proxy, voucher.cumulative
    );
    let owner = w.owner;
    let before = w.tokens_paid;
    let record = submit(chain, op, &what)?;
    let after = crate::submit::world(chain)?;
    let mut r = applied(&record, &after, names);
    let paid = record.effects.paid_to(&owner);
    r.line(format!(
        "paid {} to the worker owner for {} tokens ({} -> {})",
        nano(u128::from(paid)),
        voucher.cumulative.saturating_sub(before),
        before,
        voucher.cumulative
    ));
    Ok(r)
}

pub fn worker_show(chain: &dyn Chain, names: &Names, at: &ContractAt) -> Result<Report> {
    let world = world(chain)?;
    let w = worker(&world, at)?;
    crate::show::show(&world, names, &w.address.to_hex())
}
