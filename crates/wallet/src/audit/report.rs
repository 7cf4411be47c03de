//! The audit as text and JSON.

use super::Audit;
use crate::amount::{big, nano};
use crate::names::Names;
use crate::report::Report;
use crate::show::state_text;
use cocoon_chain::ledger::World;
use serde_json::json;

impl Audit {
    /// The text and JSON report.
    pub fn report(&self, world: &World, names: &Names) -> Report {
        let mut r = Report::new(json!({
            "ok": self.ok(),
            "seq": self.seq,
            "now": self.now,
            "minted": self.minted,
            "minted_by_history": self.minted_by_history,
            "proxies": self.proxies,
            "totals": {
                "client_paid": big(self.proxies.iter().map(|p| u128::from(p.client_paid)).sum()),
                "worker_paid": big(self.proxies.iter().map(|p| u128::from(p.worker_paid)).sum()),
                "commission_earned": big(
                    self.proxies.iter().map(|p| u128::from(p.commission_earned)).sum()
                ),
            },
            "problems": self.problems,
        }));
        let n = |v: u64| nano(u128::from(v));
        r.line(format!(
            "audit of {} ops (chain time {}), {} proxy contract(s)",
            self.seq,
            self.now,
            self.proxies.len()
        ));
        for s in &self.proxies {
            let state = world
                .proxies
                .get(&s.proxy)
                .map_or("?".into(), |p| state_text(p.state, p.unlock_at));
            r.line(format!(
                "proxy contract {} ({state}), owner {}:",
                s.proxy,
                names.label(world, &s.owner)
            ));
            r.kv("clients paid (charged)", n(s.client_paid));
            r.kv("workers earned", n(s.worker_paid));
            r.kv(
                "proxy commission earned",
                format!(
                    "{} (withdrawn {})",
                    n(s.commission_earned),
                    n(s.commission_withdrawn)
                ),
            );
            r.kv("charged, not yet paid out", n(s.charged_unpaid));
            r.kv("paid out of the proxy's stake", n(s.paid_from_stake));
            r.kv(
                "charged, swept to the owner at close",
                n(s.charged_swept_at_close),
            );
            r.kv(
                "identity",
                format!(
                    "workers earned + commission = clients paid - unpaid - swept + from stake: \
                     {} + {} = {} - {} - {} + {} -> {}",
                    s.worker_paid,
                    s.commission_earned,
                    s.client_paid,
                    s.charged_unpaid,
                    s.charged_swept_at_close,
                    s.paid_from_stake,
                    holds(s.identity_holds)
                ),
            );
            r.kv(
                "pricing",
                format!(
                    "{} tokens paid: workers earned = tokens x fee, commission = tokens x \
                     (price - fee) -> {}",
                    s.tokens_paid,
                    holds(s.pricing_holds)
                ),
            );
            r.kv(
                "coins",
                format!(
                    "in {} (client deposits {} + stake {}) - out {} (client refunds {} + \
                     workers {} + commission {} + close {}) = held {} -> {}",
                    u128::from(s.client_deposits_in) + u128::from(s.stake_in),
                    s.client_deposits_in,
                    s.stake_in,
                    u128::from(s.client_refunds_out)
                        + u128::from(s.worker_paid)
                        + u128::from(s.commission_withdrawn)
                        + u128::from(s.close_paid),
                    s.client_refunds_out,
                    s.worker_paid,
                    s.commission_withdrawn,
                    s.close_paid,
                    s.coins,
                    holds(s.coins_hold)
                ),
            );
            for (a, w) in &s.workers {
                r.line(format!(
                    "    worker contract {a}: {} tokens, paid {} to {}",
                    w.tokens,
                    n(w.paid),
                    names.label(world, &w.owner)
                ));
            }
            for (a, c) in &s.clients {
                r.line(format!(
                    "    client contract {a}: {} tokens, charged {} from {}",
                    c.tokens,
                    n(c.paid),
                    names.label(world, &c.owner)
                ));
            }
        }
        r.line(format!(
            "minted {} (Σ mints in the history {})",
            n(self.minted),
            n(self.minted_by_history)
        ));
        if self.ok() {
            r.line("audit: OK (every identity holds; the history replays to the current state)");
        } else {
            r.line(format!(
                "audit: FAILED ({} problem(s))",
                self.problems.len()
            ));
            for p in &self.problems {
                r.line(format!("  {p}"));
            }
        }
        r
    }
}

fn holds(ok: bool) -> &'static str {
    if ok {
        "holds"
    } else {
        "BROKEN"
    }
}
