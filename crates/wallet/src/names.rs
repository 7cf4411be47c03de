//! Addresses as users type them (64 hex digits, or a devnet wallet name) and as the CLI
//! prints them (a known wallet name beside the hex, contracts tagged with their kind).

use anyhow::{anyhow, bail, Result};
use cocoon_chain::ledger::{Address, World};
use std::collections::BTreeMap;

/// Wallet names `cocoon dev` uses, labelled without being asked.
const DEVNET_NAMES: &[&str] = &["dev-proxy-owner", "dev-client-owner"];
/// `dev-worker-owner-{i}` for i below this.
const DEVNET_WORKERS: usize = 16;

/// A wallet or contract as the user wrote it: 64 hex digits, or a devnet wallet name.
/// Refuses what looks like a mistyped address rather than silently naming a new wallet.
pub fn parse_address(s: &str) -> Result<Address> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty address: give 64 hex digits or a devnet wallet name");
    }
    let hexish = s.bytes().all(|b| b.is_ascii_hexdigit());
    if hexish && s.len() >= 16 && s.len() != 64 {
        bail!(
            "{s:?} looks like an address but has {} hex digits, not 64",
            s.len()
        );
    }
    Ok(Address::parse_owner(s))
}

/// Labels for addresses: wallet names the user mentioned, plus the devnet's own.
#[derive(Clone, Debug, Default)]
pub struct Names {
    known: BTreeMap<Address, String>,
}

impl Names {
    /// The devnet wallet names plus `extra` (names given on the command line).
    pub fn with<'a>(extra: impl IntoIterator<Item = &'a str>) -> Names {
        let mut names = Names::default();
        let workers = (0..DEVNET_WORKERS).map(|i| format!("dev-worker-owner-{i}"));
        let devnet = DEVNET_NAMES.iter().map(|s| s.to_string()).chain(workers);
        for name in devnet.chain(extra.into_iter().map(str::to_string)) {
            names.add(&name);
        }
        names
    }

    /// Remembers `s` if it is a wallet name (not hex).
    pub fn add(&mut self, s: &str) {
        let s = s.trim();
        if !s.is_empty() && Address::from_hex(s).is_err() {
            self.known.insert(Address::wallet(s), s.to_string());
        }
    }

    pub fn name(&self, a: &Address) -> Option<&str> {
        self.known.get(a).map(String::as_str)
    }

    /// `alice (wallet 1a2b…)`, `proxy contract 9f…` (full hex: it is what users paste).
    pub fn label(&self, world: &World, a: &Address) -> String {
        let kind = kind(world, a);
        match self.name(a) {
            Some(n) => format!("{n} ({kind} {a})"),
            None => format!("{kind} {a}"),
        }
    }
}

/// What lives at `a`.
pub fn kind(world: &World, a: &Address) -> &'static str {
    if world.proxies.contains_key(a) {
        "proxy contract"
    } else if world.clients.contains_key(a) {
        "client contract"
    } else if world.workers.contains_key(a) {
        "worker contract"
    } else {
        "wallet"
    }
}

/// `--proxy P`: a proxy contract address, or the owner of exactly one proxy contract (an
/// open one, if it has several).
pub fn resolve_proxy(world: &World, s: &str) -> Result<Address> {
    let a = parse_address(s)?;
    if world.proxies.contains_key(&a) {
        return Ok(a);
    }
    if world.clients.contains_key(&a) || world.workers.contains_key(&a) {
        bail!("{a} is a {}, not a proxy contract", kind(world, &a));
    }
    let owned: Vec<_> = world.proxies.values().filter(|p| p.owner == a).collect();
    let open: Vec<_> = owned
        .iter()
        .copied()
        .filter(|p| p.state != cocoon_chain::ledger::ContractState::Closed)
        .collect();
    match (owned.as_slice(), open.as_slice()) {
        ([], _) => Err(anyhow!(
            "no proxy contract at {s:?} (nor one owned by it): `balances` lists every proxy"
        )),
        ([only], _) | (_, [only]) => Ok(only.address),
        _ => Err(anyhow!(
            "{s:?} owns {} proxy contracts; pick one with --proxy ADDRESS: {}",
            owned.len(),
            owned
                .iter()
                .map(|p| p.address.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_names_and_refuses_truncated_hex() {
        let a = Address::wallet("alice");
        assert_eq!(parse_address("alice").unwrap(), a);
        assert_eq!(parse_address(&a.to_hex()).unwrap(), a);
        assert_eq!(parse_address(&a.to_hex().to_uppercase()).unwrap(), a);
        let e = parse_address(&a.to_hex()[..63]).unwrap_err().to_string();
        assert!(e.contains("63 hex digits"), "{e}");
        assert!(parse_address(" ").is_err());
        // Short hex-looking words are still names ("cafe", "beef").
        assert_eq!(parse_address("cafe").unwrap(), Address::wallet("cafe"));
    }

    #[test]
    fn labels_known_names() {
        let world = World::new(Default::default());
        let names = Names::with(["alice"]);
        let alice = Address::wallet("alice");
        assert_eq!(
            names.label(&world, &alice),
            format!("alice (wallet {alice})")
        );
        let dev = Address::wallet("dev-worker-owner-3");
        assert!(names.label(&world, &dev).starts_with("dev-worker-owner-3 "));
        let other = Address::wallet("zed");
        assert_eq!(names.label(&world, &other), format!("wallet {other}"));
    }
}
