//! The audit pages through long histories, and reports (never hides) state that the
//! history does not explain.

mod common;

use cocoon_chain::ledger::{Address, Op, World};
use cocoon_chain::{Chain, ChainError, Clock, LocalChain, Registry, Tip, TxRecord};
use common::*;
use std::sync::Arc;

#[test]
fn long_histories_are_read_page_by_page() {
    let chain = LocalChain::with_clock(Registry::default(), Clock::manual(1));
    for i in 0..2_345u64 {
        let to = Address::wallet(&format!("w{}", i % 7));
        chain.submit(Op::Mint { to, amount: i + 1 }).unwrap();
    }
    let a = json(&*chain, &["audit"]);
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a["seq"], 2_345);
    let minted: u64 = (1..=2_345).sum();
    assert_eq!(a["minted_by_history"], minted);
    assert_eq!(a["minted"], minted);
}

/// A chain whose state has coins its history never minted.
#[derive(Debug)]
struct Tampered(Arc<LocalChain>);

impl Chain for Tampered {
    fn registry(&self) -> Arc<Registry> {
        self.0.registry()
    }
    fn submit(&self, op: Op) -> Result<TxRecord, ChainError> {
        self.0.submit(op)
    }
    fn tip(&self) -> Result<Tip, ChainError> {
        self.0.tip()
    }
    fn world(&self) -> Result<Arc<World>, ChainError> {
        let mut w = (*self.0.world()?).clone();
        *w.accounts.entry(Address::wallet("mallory")).or_default() += 5;
        Ok(Arc::new(w))
    }
    fn history(&self, from: u64, limit: usize) -> Result<Vec<TxRecord>, ChainError> {
        self.0.history(from, limit)
    }
    fn advance(&self, secs: u64) -> Result<Tip, ChainError> {
        self.0.advance(secs)
    }
}

#[test]
fn state_the_history_does_not_explain_fails_the_audit() {
    let inner = LocalChain::with_clock(Registry::default(), Clock::manual(1));
    let chain = Tampered(inner);
    ok(&chain, &["faucet", "alice", "1ton"]);
    deploy_proxy(&chain, "alice", TON);
    let text = ok(&chain, &["audit"]);
    assert!(text.contains("audit: FAILED"), "{text}");
    assert!(
        text.contains("does not reproduce the chain's current state"),
        "{text}"
    );
    let b = ok(&chain, &["balances"]);
    assert!(b.contains("invariants: VIOLATED"), "{b}");
    let e = err(&chain, &["audit", "--check"]);
    assert!(e.starts_with("audit failed: "), "{e}");
}
