//! The worker's side of payments (DESIGN §4, §6): per proxy, the highest payout voucher
//! and counters it has seen (sent in the balance compare, so a proxy restored from an old
//! DB finds the worker ahead of it), refusing a proxy that reports less than it already
//! reported, and submitting its payout voucher itself when it has been idle a while.

use cocoon_chain::Chain;
use cocoon_ledger::{
    Address, CounterView, Op, PublicKey, SeenCounters, SignatureFormat, SignedVoucher, VoucherOp,
};
use cocoon_proto::{money, PaymentStatus};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a connected worker asks each proxy for its payment status.
pub(crate) const PAYMENT_POLL: Duration = Duration::from_secs(1);
/// A worker with unpaid vouchers and no request for this long submits its payout.
pub(crate) const PAYOUT_IDLE: Duration = Duration::from_secs(5);
/// Unpaid adjusted tokens past which a busy worker submits its payout anyway.
pub(crate) const PAYOUT_THRESHOLD: u64 = 1_000_000;

/// What the worker knows of one paying proxy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProxyTerms {
    pub proxy: Address,
    pub key: PublicKey,
    /// This worker's contract at that proxy.
    pub worker: Address,
    /// This worker's owner (wallet), which deploys the contract where the proxy cannot.
    pub owner: Address,
    /// What the proxy signs vouchers over on this chain.
    pub format: SignatureFormat,
}

struct Memory {
    terms: ProxyTerms,
    highest: Option<SignedVoucher>,
    seen: SeenCounters,
    paid_on_chain: u64,
    /// Whether a status from this proxy was observed in this process: the first one (at
    /// the handshake) is the baseline of `observe`'s earnings, not an earning.
    baselined: bool,
}

#[derive(Default)]
pub(crate) struct Wallet {
    proxies: Mutex<HashMap<Address, Memory>>,
    pub payouts: AtomicU64,
    pub refusals: AtomicU64,
    last_use: Mutex<Option<Instant>>,
}

impl Wallet {
    fn proxies(&self) -> std::sync::MutexGuard<'_, HashMap<Address, Memory>> {
        self.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the proxy's announced terms: its worker contract address must be ours.
    /// Blocking (the chain derives the address; on TON it may read the proxy contract).
    pub fn terms(
        chain: &dyn Chain,
        owner: &str,
        contract_hex: &str,
        key: &[u8],
        worker_hex: &str,
    ) -> Result<Option<ProxyTerms>, String> {
        if contract_hex.is_empty() {
            return Ok(None); // a proxy without payments
        }
        let proxy = Address::from_hex(contract_hex)
            .map_err(|_| "proxy contract address is not 64 hex digits".to_string())?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| "proxy voucher key is not 32 bytes".to_string())?;
        let owner = Address::parse_owner(owner);
        let worker = chain
            .worker_contract(&proxy, &owner)
            .map_err(|e| format!("cannot derive our worker contract: {e}"))?;
        if worker_hex != worker.to_hex() {
            return Err("proxy announced a worker contract that is not ours".into());
        }
        Ok(Some(ProxyTerms {
            proxy,
            key: PublicKey(key),
            worker,
            owner,
            format: chain.signature_format(),
        }))
    }

    /// What to send in the balance compare.
    pub fn compare(&self, terms: &ProxyTerms) -> (Option<SignedVoucher>, CounterView) {
        let mut proxies = self.proxies();
        let m = proxies.entry(terms.proxy).or_insert_with(|| Memory {
            terms: *terms,
            highest: None,
            seen: SeenCounters::default(),
            paid_on_chain: 0,
            baselined: false,
        });
        m.terms = *terms;
        (m.highest, m.seen.0)
    }

    /// Takes in a payment status from the proxy. Errors mean: refuse this proxy. Returns
    /// the tokens its payout voucher grew by since the previous status (0 for the first
    /// status this process sees from the proxy: earned before, or by another process).
    pub fn observe(
        &self,
        terms: &ProxyTerms,
        status: Option<&PaymentStatus>,
    ) -> Result<u64, String> {
        let Some(status) = status else { return Ok(0) };
        let voucher =
            money::voucher_from_wire(status.voucher.as_ref()).map_err(|e| e.to_string())?;
        let counters =
            money::counters_from_wire(status.counters.as_ref()).map_err(|e| e.to_string())?;
        if let Some(v) = &voucher {
            if v.op != VoucherOp::WorkerPayout || v.contract != terms.worker {
                return Err("proxy sent a voucher for another contract".into());
            }
            v.verify_in(terms.format, &terms.key)
                .map_err(|_| "proxy sent a voucher that does not verify".to_string())?;
        }
        let mut proxies = self.proxies();
        let Some(m) = proxies.get_mut(&terms.proxy) else {
            return Ok(0);
        };
        let before = m.highest.map_or(0, |h| h.cumulative);
        let refused = |why: String| {
            self.refusals.fetch_add(1, Relaxed);
            Err(format!("proxy {} {why}; refusing it", terms.proxy))
        };
        if let Err(e) = m.seen.observe(counters) {
            return refused(format!("reported counters that went back: {e}"));
        }
        match (voucher, m.highest) {
            (Some(v), Some(h)) if v.cumulative < h.cumulative => {
                return refused(format!(
                    "sent a voucher for {} tokens after one for {}",
                    v.cumulative, h.cumulative
                ))
            }
            (None, Some(h)) => {
                return refused(format!("reports no voucher after one for {}", h.cumulative))
            }
            (Some(v), _) => m.highest = Some(v),
            (None, None) => {}
        }
        let grown = m.highest.map_or(0, |h| h.cumulative).saturating_sub(before);
        let earned = if m.baselined { grown } else { 0 };
        m.baselined = true;
        Ok(earned)
    }

    /// Σ over proxies of (highest payout voucher, tokens paid on chain), in adjusted tokens.
    pub fn totals(&self) -> (u64, u64) {
        self.proxies().values().fold((0, 0), |(v, p), m| {
            (
                v.saturating_add(m.highest.map_or(0, |h| h.cumulative)),
                p.saturating_add(m.paid_on_chain),
            )
        })
    }

    pub fn used(&self) {
        *self.last_use.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Submits the held payout voucher when it is above what the contract was paid and
    /// the worker has been idle for `PAYOUT_IDLE` or is owed `PAYOUT_THRESHOLD` tokens.
    /// Blocking (chain call).
    pub fn maybe_payout(&self, chain: &dyn Chain, terms: &ProxyTerms) {
        let idle = self
            .last_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|t| t.elapsed() >= PAYOUT_IDLE);
        let Some(voucher) = self.proxies().get(&terms.proxy).and_then(|m| m.highest) else {
            return;
        };
        let paid = match chain.world() {
            Ok(w) => match w.workers.get(&terms.worker) {
                Some(c) => c.tokens_paid,
                None => {
                    if let Err(e) = deploy_own_contract(chain, terms) {
                        tracing::warn!("{e}");
                        return;
                    }
                    0
                }
            },
            Err(e) => {
                tracing::debug!("cannot read the worker contract: {e}");
                return;
            }
        };
        if let Some(m) = self.proxies().get_mut(&terms.proxy) {
            m.paid_on_chain = paid;
        }
        let unpaid = voucher.cumulative.saturating_sub(paid);
        if unpaid == 0 || (!idle && unpaid < PAYOUT_THRESHOLD) {
            return;
        }
        if let Submitted::Failed(e) = self.submit(chain, terms, voucher) {
            tracing::warn!("payout failed: {e}");
        }
    }

    /// Submits one payout voucher; on success the contract is paid up to it.
    fn submit(&self, chain: &dyn Chain, terms: &ProxyTerms, voucher: SignedVoucher) -> Submitted {
        match chain.submit(cocoon_ledger::Op::WorkerPayout {
            worker: terms.worker,
            voucher,
        }) {
            Ok(_) => {
                self.payouts.fetch_add(1, Relaxed);
                if let Some(m) = self.proxies().get_mut(&terms.proxy) {
                    m.paid_on_chain = m.paid_on_chain.max(voucher.cumulative);
                }
                tracing::info!(tokens = voucher.cumulative, "submitted a payout voucher");
                Submitted::Done
            }
            // The proxy paid first: fine.
            Err(e) if e.is_stale_voucher() => Submitted::AlreadyPaid,
            Err(e) => Submitted::Failed(e.to_string()),
        }
    }

    /// The operator's "pay me now": submits every held payout voucher that is above what
    /// its contract was paid, whatever the idle time, and says per proxy what happened.
    /// Blocking (chain calls); an error means the chain could not be read at all.
    pub fn payout_now(&self, chain: &dyn Chain) -> Result<Vec<Value>, String> {
        let held: Vec<(ProxyTerms, Option<SignedVoucher>)> = self
            .proxies()
            .values()
            .map(|m| (m.terms, m.highest))
            .collect();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let world = chain
            .world()
            .map_err(|e| format!("cannot read the chain: {e}"))?;
        let mut out = Vec::with_capacity(held.len());
        for (terms, voucher) in held {
            let on_chain = world.workers.get(&terms.worker);
            if on_chain.is_none() && voucher.is_some() {
                if let Err(e) = deploy_own_contract(chain, &terms) {
                    out.push(json!({
                        "proxy_contract": terms.proxy.to_hex(),
                        "worker_contract": terms.worker.to_hex(),
                        "result": "failed",
                        "error": e,
                    }));
                    continue;
                }
            }
            let paid = on_chain.map_or(0, |c| c.tokens_paid);
            if let Some(m) = self.proxies().get_mut(&terms.proxy) {
                m.paid_on_chain = paid;
            }
            let voucher_tokens = voucher.map_or(0, |v| v.cumulative);
            let (result, error) = match voucher {
                None => ("no_voucher", None),
                Some(v) if v.cumulative <= paid => ("nothing_unpaid", None),
                Some(v) => match self.submit(chain, &terms, v) {
                    Submitted::Done => ("submitted", None),
                    Submitted::AlreadyPaid => ("already_paid", None),
                    Submitted::Failed(e) => ("failed", Some(e)),
                },
            };
            out.push(json!({
                "proxy_contract": terms.proxy.to_hex(),
                "worker_contract": terms.worker.to_hex(),
                "voucher_tokens": voucher_tokens,
                "paid_before_tokens": paid,
                "unpaid_tokens": voucher_tokens.saturating_sub(paid),
                "result": result,
                "error": error,
            }));
        }
        out.sort_by(|a, b| {
            a["proxy_contract"]
                .as_str()
                .cmp(&b["proxy_contract"].as_str())
        });
        Ok(out)
    }

    pub fn stats_json(&self) -> Value {
        let proxies: Vec<Value> = self
            .proxies()
            .values()
            .map(|m| {
                json!({
                    "proxy_contract": m.terms.proxy.to_hex(),
                    "worker_contract": m.terms.worker.to_hex(),
                    "voucher_tokens": m.highest.map_or(0, |v| v.cumulative),
                    "voucher": m.highest,
                    "seen_counters": m.seen.0,
                    "paid_tokens": m.paid_on_chain,
                })
            })
            .collect();
        json!({
            "proxies": proxies,
            "payouts": self.payouts.load(Relaxed),
            "refusals": self.refusals.load(Relaxed),
        })
    }
}

/// What submitting one payout voucher did.
enum Submitted {
    Done,
    /// The contract was already paid that far (the proxy submitted it first).
    AlreadyPaid,
    Failed(String),
}

/// Deploys this worker's contract from its own wallet: on TON only the owner can, so a proxy
/// leaves it to the worker (the embedded chains' proxies deploy it at the handshake).
fn deploy_own_contract(chain: &dyn Chain, terms: &ProxyTerms) -> Result<(), String> {
    match chain.submit(Op::DeployWorker {
        owner: terms.owner,
        proxy: terms.proxy,
    }) {
        Ok(_) => {
            tracing::info!(contract = %terms.worker, "deployed this worker's contract");
            Ok(())
        }
        Err(e) if e.is_already_deployed() => Ok(()),
        Err(e) => Err(format!(
            "cannot deploy the worker contract {}: {e}",
            terms.worker
        )),
    }
}

/// Runs `maybe_payout` off the async runtime.
pub(crate) async fn payout_tick(wallet: Arc<Wallet>, chain: Arc<dyn Chain>, terms: ProxyTerms) {
    let _ = tokio::task::spawn_blocking(move || wallet.maybe_payout(chain.as_ref(), &terms)).await;
}
