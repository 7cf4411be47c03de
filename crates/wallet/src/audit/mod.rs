//! `audit`: where the money went, from the history (paged) replayed through the ledger.
//!
//! Replaying every applied op in a fresh [`World`] gives each op's effect on the proxy's
//! buckets (a charge moves coins between buckets of one contract, so no transfer records
//! it), and checks on the way that the history reproduces the current state. Per proxy:
//!
//! ```text
//! workers earned + commission earned
//!     = clients paid − charged still unpaid − charged swept at close + paid from stake
//! ```
//!
//! plus the pricing check (Σ tokens paid × fee = workers earned, × (price − fee) =
//! commission) and the coin check (coins in − coins out = what the contract holds).

mod report;

use anyhow::Result;
use cocoon_chain::ledger::{Address, Op, ProxyContract, TransferKind, World};
use cocoon_chain::{Chain, Tip, TxRecord};
use serde::Serialize;
use std::collections::BTreeMap;

/// History records fetched per call.
const PAGE: usize = 1000;

/// Money through one proxy contract, from the history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProxyAudit {
    pub proxy: Address,
    pub owner: Address,
    /// nanoTON charged from clients (ClientCharge / ClientGrantRefund) into the proxy.
    pub client_paid: u64,
    /// nanoTON paid to worker owners.
    pub worker_paid: u64,
    /// The proxy's part of the payouts (payout total − worker part).
    pub commission_earned: u64,
    pub commission_withdrawn: u64,
    /// Payouts beyond what was charged, taken from the proxy's stake (credit it extended).
    pub paid_from_stake: u64,
    /// Charged and not yet paid out (the proxy's `charged` bucket now).
    pub charged_unpaid: u64,
    /// Charged money that went to the owner when the proxy closed.
    pub charged_swept_at_close: u64,
    /// Σ tokens paid over the proxy's worker contracts.
    pub tokens_paid: u64,
    pub client_deposits_in: u64,
    pub client_refunds_out: u64,
    pub stake_in: u64,
    pub close_paid: u64,
    /// Coins on the contract now.
    pub coins: u64,
    /// The identity in the module docs.
    pub identity_holds: bool,
    pub pricing_holds: bool,
    /// in − out = coins.
    pub coins_hold: bool,
    /// Per worker contract: (owner, tokens paid, nanoTON paid to the owner).
    pub workers: BTreeMap<Address, PartyAudit>,
    /// Per client contract: (owner, tokens charged, nanoTON charged).
    pub clients: BTreeMap<Address, PartyAudit>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartyAudit {
    pub owner: Address,
    pub tokens: u64,
    pub paid: u64,
}

/// The whole audit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Audit {
    pub seq: u64,
    pub now: u64,
    pub minted: u64,
    /// Σ Mint ops in the history (must equal `minted`).
    pub minted_by_history: u64,
    pub proxies: Vec<ProxyAudit>,
    /// Everything that does not add up; empty = the audit passed.
    pub problems: Vec<String>,
}

impl Audit {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads a consistent (world, history) pair: retried when ops land while reading.
fn snapshot(chain: &dyn Chain) -> Result<(World, Vec<TxRecord>, Tip, bool)> {
    let err = |e| crate::submit::explain("read the chain for the audit", e);
    let mut attempt = 0;
    loop {
        let before = chain.tip().map_err(err)?;
        let world = chain.world().map_err(err)?;
        let mut history: Vec<TxRecord> = Vec::new();
        loop {
            let from = history.last().map_or(1, |r| r.seq + 1);
            let page = chain.history(from, PAGE).map_err(err)?;
            // A short page ends the history; one that does not move forward would loop.
            let stuck = page.last().is_none_or(|r| r.seq < from);
            let short = page.len() < PAGE;
            history.extend(page);
            if short || stuck {
                break;
            }
        }
        let after = chain.tip().map_err(err)?;
        let last = history.last().map_or(0, |r| r.seq);
        let consistent = before.seq == after.seq && last == after.seq;
        attempt += 1;
        if consistent || attempt == 3 {
            return Ok(((*world).clone(), history, after, consistent));
        }
    }
}

/// Audits `chain`.
pub fn audit(chain: &dyn Chain) -> Result<Audit> {
    let (current, history, tip, consistent) = snapshot(chain)?;
    let mut audit = Audit {
        seq: history.last().map_or(0, |r| r.seq),
        now: tip.now,
        ..Audit::default()
    };
    let mut world = World::new(current.params.clone());
    let mut stats: BTreeMap<Address, ProxyAudit> = BTreeMap::new();
    for (i, record) in history.iter().enumerate() {
        if record.seq != i as u64 + 1 {
            audit.problems.push(format!(
                "history has a gap: record {} has seq {}",
                i + 1,
                record.seq
            ));
            break;
        }
        if let Err(e) = replay_one(&mut world, &current, chain, record, &mut stats, &mut audit) {
            audit.problems.push(format!(
                "history does not replay at seq {}: {e}",
                record.seq
            ));
            break;
        }
    }
    // Compare with what the chain holds (params may have moved on without an op).
    world.params = current.params.clone();
    if consistent && world != current {
        audit
            .problems
            .push("replaying the history does not reproduce the chain's current state".to_string());
    }
    if !consistent {
        audit.problems.push(
            "the chain kept moving while being read: numbers are for the history read; \
             run the audit again"
                .to_string(),
        );
    }
    finish(&world, stats, &mut audit);
    Ok(audit)
}

/// Applies one record to the replayed world and adds its money to the proxy's stats.
fn replay_one(
    world: &mut World,
    current: &World,
    chain: &dyn Chain,
    record: &TxRecord,
    stats: &mut BTreeMap<Address, ProxyAudit>,
    audit: &mut Audit,
) -> Result<(), String> {
    let proxy_of = |w: &World, op: &Op| -> Option<Address> {
        match op {
            Op::ClientCharge { client, .. } | Op::ClientGrantRefund { client, .. } => {
                w.clients.get(client).map(|c| c.proxy)
            }
            Op::WorkerPayout { worker, .. } | Op::WorkerLastPayout { worker, .. } => {
                w.workers.get(worker).map(|c| c.proxy)
            }
            Op::ProxyCompleteClose { proxy, .. } => Some(*proxy),
            _ => None,
        }
    };
    if let Op::DeployProxy {
        owner,
        key,
        params_version,
        ..
    } = &record.op
    {
        // A proxy keeps the root parameters it was deployed under; the history does not
        // record them, the contract does.
        let addr = Address::proxy_contract(owner, key, *params_version);
        world.params = match current.proxies.get(&addr) {
            Some(p) => p.params.clone(),
            None => chain.registry().params.clone(),
        };
    }
    let watched = proxy_of(world, &record.op);
    let before: Option<ProxyContract> = watched.and_then(|p| world.proxies.get(&p).cloned());
    let effects = world
        .apply(&record.op, record.time)
        .map_err(|e| e.to_string())?;
    if effects != record.effects {
        return Err("its transfers differ from the recorded ones".into());
    }
    if let Op::Mint { amount, .. } = &record.op {
        audit.minted_by_history = audit.minted_by_history.saturating_add(*amount);
    }
    // Coin flows in and out of every proxy, from the recorded transfers.
    for t in &effects.transfers {
        if let Some(p) = world.proxies.get(&t.to) {
            let s = entry(stats, p);
            match &record.op {
                Op::DeployProxy { .. } | Op::ProxyIncreaseStake { .. } => {
                    s.stake_in = s.stake_in.saturating_add(t.amount)
                }
                _ => s.client_deposits_in = s.client_deposits_in.saturating_add(t.amount),
            }
        }
        if let Some(p) = world.proxies.get(&t.from) {
            let s = entry(stats, p);
            let bucket = match t.kind {
                TransferKind::ClientWithdraw | TransferKind::ClientRefund => {
                    &mut s.client_refunds_out
                }
                TransferKind::WorkerPayout => &mut s.worker_paid,
                TransferKind::ProxyWithdraw => &mut s.commission_withdrawn,
                TransferKind::ProxyClose => &mut s.close_paid,
                TransferKind::Deposit | TransferKind::Wallet => &mut s.client_refunds_out,
            };
            *bucket = bucket.saturating_add(t.amount);
        }
    }
    // Bucket moves inside the proxy, which no transfer shows.
    let (Some(before), Some(after)) = (before, watched.and_then(|p| world.proxies.get(&p))) else {
        return Ok(());
    };
    let s = entry(stats, after);
    let charged_in = after.charged.saturating_sub(before.charged);
    match &record.op {
        Op::ClientCharge { client, .. } | Op::ClientGrantRefund { client, .. } => {
            s.client_paid = s.client_paid.saturating_add(charged_in);
            if let Some(c) = world.clients.get(client) {
                let party = s.clients.entry(*client).or_default();
                party.owner = c.owner;
                party.tokens = c.tokens_charged;
                party.paid = party.paid.saturating_add(charged_in);
            }
        }
        Op::WorkerPayout { worker, .. } | Op::WorkerLastPayout { worker, .. } => {
            let earned = after.commission.saturating_sub(before.commission);
            s.commission_earned = s.commission_earned.saturating_add(earned);
            let from_stake = before.stake.saturating_sub(after.stake);
            s.paid_from_stake = s.paid_from_stake.saturating_add(from_stake);
            if let Some(w) = world.workers.get(worker) {
                let party = s.workers.entry(*worker).or_default();
                party.owner = w.owner;
                party.tokens = w.tokens_paid;
                party.paid = party.paid.saturating_add(effects.paid_to(&w.owner));
            }
        }
        Op::ProxyCompleteClose { .. } => {
            s.charged_swept_at_close = s.charged_swept_at_close.saturating_add(before.charged);
        }
        _ => {}
    }
    Ok(())
}

fn entry<'a>(
    stats: &'a mut BTreeMap<Address, ProxyAudit>,
    p: &ProxyContract,
) -> &'a mut ProxyAudit {
    stats.entry(p.address).or_insert_with(|| ProxyAudit {
        proxy: p.address,
        owner: p.owner,
        ..ProxyAudit::default()
    })
}

/// Fills in the current-state numbers and the checks.
fn finish(world: &World, mut stats: BTreeMap<Address, ProxyAudit>, audit: &mut Audit) {
    audit.minted = world.minted;
    if audit.minted_by_history != world.minted {
        audit.problems.push(format!(
            "Σ mints in the history ({}) differ from minted ({})",
            audit.minted_by_history, world.minted
        ));
    }
    if let Err(e) = world.check_invariants() {
        audit.problems.push(format!("world invariant: {e}"));
    }
    for p in world.proxies.values() {
        let mut s = stats.remove(&p.address).unwrap_or_default();
        s.proxy = p.address;
        s.owner = p.owner;
        s.charged_unpaid = p.charged;
        s.coins = world.balance(&p.address);
        s.tokens_paid = world
            .workers
            .values()
            .filter(|w| w.proxy == p.address)
            .map(|w| u128::from(w.tokens_paid))
            .sum::<u128>()
            .try_into()
            .unwrap_or(u64::MAX);
        let lhs = u128::from(s.worker_paid) + u128::from(s.commission_earned);
        let rhs = i128::from(s.client_paid)
            - i128::from(s.charged_unpaid)
            - i128::from(s.charged_swept_at_close)
            + i128::from(s.paid_from_stake);
        s.identity_holds = i128::try_from(lhs).is_ok_and(|l| l == rhs);
        let tokens = u128::from(s.tokens_paid);
        let fee = u128::from(p.params.worker_fee_per_token);
        let price = u128::from(p.params.price_per_token);
        s.pricing_holds = tokens * fee == u128::from(s.worker_paid)
            && tokens * price.saturating_sub(fee) == u128::from(s.commission_earned);
        let coins_in = u128::from(s.client_deposits_in) + u128::from(s.stake_in);
        let coins_out = u128::from(s.client_refunds_out)
            + u128::from(s.worker_paid)
            + u128::from(s.commission_withdrawn)
            + u128::from(s.close_paid);
        s.coins_hold = coins_in.checked_sub(coins_out) == Some(u128::from(s.coins));
        let who = format!("proxy contract {}", p.address);
        if !s.identity_holds {
            audit.problems.push(format!(
                "{who}: workers earned + commission != clients paid − unpaid − swept + from stake"
            ));
        }
        if !s.pricing_holds {
            audit
                .problems
                .push(format!("{who}: payouts do not match tokens × prices"));
        }
        if !s.coins_hold {
            audit
                .problems
                .push(format!("{who}: coins in − out != coins held"));
        }
        audit.proxies.push(s);
    }
}
