//! Read-only views: one account (`show`), everything (`balances`), and the one-line
//! summaries of wallets and contracts every other command reuses.

use crate::amount::{big, nano};
use crate::names::{kind, parse_address, Names};
use crate::report::Report;
use cocoon_chain::ledger::{
    Address, ClientContract, ContractState, ProxyContract, WorkerContract, World,
};
use serde_json::{json, Value};

/// `label: what it holds` for any address.
pub fn account_line(world: &World, names: &Names, a: &Address) -> String {
    let label = names.label(world, a);
    if let Some(p) = world.proxies.get(a) {
        format!("{label}: {}", proxy_summary(world, names, p))
    } else if let Some(c) = world.clients.get(a) {
        format!("{label}: {}", client_summary(names, c))
    } else if let Some(w) = world.workers.get(a) {
        format!("{label}: {}", worker_summary(names, w))
    } else {
        format!("{label}: {}", nano(u128::from(world.balance(a))))
    }
}

pub fn state_text(state: ContractState, unlock_at: u64) -> String {
    match state {
        ContractState::Open => "open".into(),
        ContractState::Closing => format!("closing (unlocks at chain time {unlock_at})"),
        ContractState::Closed => "closed".into(),
    }
}

/// A wallet by its name when known (names work as arguments too), else its address.
fn short(names: &Names, a: &Address) -> String {
    names.name(a).map_or_else(|| a.to_hex(), str::to_string)
}

pub fn proxy_summary(world: &World, names: &Names, p: &ProxyContract) -> String {
    format!(
        "holds {}; stake {}, commission {}, client deposits {}, charged unpaid {}; {}; \
         anchor seqno {}; {} open client(s), {} open worker(s); owner {}",
        nano(u128::from(world.balance(&p.address))),
        nano(u128::from(p.stake)),
        nano(u128::from(p.commission)),
        nano(u128::from(p.client_deposits)),
        nano(u128::from(p.charged)),
        state_text(p.state, p.unlock_at),
        p.anchor_seqno,
        p.clients.len(),
        p.workers.len(),
        short(names, &p.owner)
    )
}

pub fn client_summary(names: &Names, c: &ClientContract) -> String {
    format!(
        "balance {} (held by its proxy), stake {}, tokens charged {}; {}; proxy {}; owner {}",
        nano(u128::from(c.balance)),
        nano(u128::from(c.stake)),
        c.tokens_charged,
        state_text(c.state, c.unlock_at),
        c.proxy,
        short(names, &c.owner)
    )
}

pub fn worker_summary(names: &Names, w: &WorkerContract) -> String {
    format!(
        "tokens paid {}; {}; proxy {}; owner {}",
        w.tokens_paid,
        state_text(w.state, 0),
        w.proxy,
        short(names, &w.owner)
    )
}

fn proxy_json(world: &World, p: &ProxyContract) -> Value {
    let mut v = json!(p);
    v["coins"] = json!(world.balance(&p.address));
    v
}

/// `show ADDR|NAME`: a contract, or a wallet with every contract it owns.
pub fn show(world: &World, names: &Names, who: &str) -> anyhow::Result<Report> {
    let a = parse_address(who)?;
    let mut r = Report::new(Value::Null);
    r.line(account_line(world, names, &a));
    if let Some(p) = world.proxies.get(&a) {
        r.json = json!({ "address": a, "kind": "proxy", "proxy": proxy_json(world, p) });
        return Ok(r);
    }
    if let Some(c) = world.clients.get(&a) {
        r.json = json!({ "address": a, "kind": "client", "client": c });
        return Ok(r);
    }
    if let Some(w) = world.workers.get(&a) {
        r.json = json!({ "address": a, "kind": "worker", "worker": w });
        return Ok(r);
    }
    let proxies: Vec<_> = world.proxies.values().filter(|p| p.owner == a).collect();
    let clients: Vec<_> = world.clients.values().filter(|c| c.owner == a).collect();
    let workers: Vec<_> = world.workers.values().filter(|w| w.owner == a).collect();
    if proxies.is_empty() && clients.is_empty() && workers.is_empty() {
        r.line("  owns no contracts");
    }
    for p in &proxies {
        r.line(format!(
            "  owns proxy contract {}: {}",
            p.address,
            proxy_summary(world, names, p)
        ));
    }
    for c in &clients {
        r.line(format!(
            "  owns client contract {}: {}",
            c.address,
            client_summary(names, c)
        ));
    }
    for w in &workers {
        r.line(format!(
            "  owns worker contract {}: {}",
            w.address,
            worker_summary(names, w)
        ));
    }
    r.json = json!({
        "address": a,
        "kind": "wallet",
        "name": names.name(&a),
        "balance": world.balance(&a),
        "proxies": proxies.iter().map(|p| proxy_json(world, p)).collect::<Vec<_>>(),
        "clients": clients,
        "workers": workers,
    });
    Ok(r)
}

/// Wallets: every account that is not a contract.
pub fn wallets(world: &World) -> impl Iterator<Item = (&Address, &u64)> {
    world
        .accounts
        .iter()
        .filter(|(a, _)| kind(world, a) == "wallet")
}

/// `balances`: every wallet and contract, the totals and the invariant check.
pub fn balances(world: &World, names: &Names) -> Report {
    let mut r = Report::new(Value::Null);
    r.line("wallets:");
    let mut wallet_sum = 0u128;
    let mut wallet_json = serde_json::Map::new();
    for (a, &coins) in wallets(world) {
        wallet_sum += u128::from(coins);
        r.line(format!("  {}", account_line(world, names, a)));
        wallet_json.insert(
            a.to_hex(),
            json!({ "name": names.name(a), "balance": coins }),
        );
    }
    r.line("proxy contracts:");
    for p in world.proxies.values() {
        r.line(format!("  {}", account_line(world, names, &p.address)));
    }
    r.line("client contracts:");
    for c in world.clients.values() {
        r.line(format!("  {}", account_line(world, names, &c.address)));
    }
    r.line("worker contracts:");
    for w in world.workers.values() {
        r.line(format!("  {}", account_line(world, names, &w.address)));
    }
    let contracts = world.in_contracts();
    let invariants = world.check_invariants().map_err(|e| e.to_string());
    r.line("totals:");
    r.kv("minted", nano(u128::from(world.minted)));
    r.kv("wallets", nano(wallet_sum));
    r.kv("contracts", nano(contracts));
    r.kv("wallets + contracts", nano(wallet_sum + contracts));
    r.kv(
        "invariants",
        match &invariants {
            Ok(()) => "ok (coins conserved: wallets + contracts = minted; every proxy holds \
                       exactly its buckets)"
                .to_string(),
            Err(e) => format!("VIOLATED: {e}"),
        },
    );
    r.json = json!({
        "now": world.now,
        "wallets": wallet_json,
        "proxies": world.proxies.values().map(|p| proxy_json(world, p)).collect::<Vec<_>>(),
        "clients": world.clients.values().collect::<Vec<_>>(),
        "workers": world.workers.values().collect::<Vec<_>>(),
        "totals": {
            "minted": world.minted,
            "wallets": big(wallet_sum),
            "contracts": big(contracts),
            "invariants_ok": invariants.is_ok(),
            "invariant_error": invariants.err(),
        },
    });
    r
}
