//! The proxy's money (DESIGN §6): per-client credit and reservations, per-worker earnings,
//! the three counters per peer, the signed proxy DB, anchors on chain, vouchers for
//! anchored state only, and settlement (charge clients, pay workers, refund closers).
//!
//! Locking: all books sit behind one `std::sync::Mutex` held only for in-memory work
//! (never across a DB write or a chain call), so requests are never stalled by I/O.

mod books;
mod key;
mod settle;
mod startup;
mod store;
#[cfg(test)]
mod tests;

pub(crate) use books::Ticket;

use books::Books;
use cocoon_chain::Chain;
use cocoon_ledger::{Address, PublicKey};
use ring::signature::Ed25519KeyPair;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Payment settings of a proxy (TOML `[proxy.payments]`).
#[derive(Clone, Debug)]
pub struct ProxyPayments {
    /// Holds `proxy.key` (the voucher key, created on first start) and `proxy.db`.
    pub state_dir: PathBuf,
    /// Stake deposited when the proxy contract is deployed; 0 = the registry minimum.
    pub stake: u64,
    /// How often in-memory counters are committed to the proxy DB (about 1 s).
    pub commit_interval: Duration,
    /// How often the DB state is anchored on chain (30–60 s in production).
    pub anchor_interval: Duration,
    /// Uncharged adjusted tokens of a client that trigger a charge.
    pub charge_threshold: u64,
    /// Unpaid adjusted tokens of a worker that trigger a payout.
    pub payout_threshold: u64,
    /// A peer idle this long is settled in full, whatever the thresholds.
    pub idle_settle: Duration,
}

impl ProxyPayments {
    pub fn new(state_dir: PathBuf) -> Self {
        ProxyPayments {
            state_dir,
            stake: 0,
            commit_interval: Duration::from_secs(1),
            anchor_interval: Duration::from_secs(30),
            charge_threshold: 1_000_000,
            payout_threshold: 1_000_000,
            idle_settle: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MoneyError {
    #[error("proxy key: {0}")]
    Key(String),
    #[error("proxy database: {0}")]
    Db(String),
    #[error("proxy database was tampered with: {0}")]
    Tampered(String),
    #[error("proxy state was rolled back: {0}; refusing to serve (restore the latest proxy DB)")]
    RolledBack(String),
    #[error("chain: {0}")]
    Chain(String),
}

/// Counters shown in `/jsonstats`.
#[derive(Debug, Default)]
pub(crate) struct MoneyStats {
    pub batches: AtomicU64,
    pub anchors: AtomicU64,
    pub charges: AtomicU64,
    pub payouts: AtomicU64,
    pub refunds: AtomicU64,
    pub chain_errors: AtomicU64,
    pub db_errors: AtomicU64,
    pub alarms: AtomicU64,
}

pub(crate) struct Payments {
    key: Ed25519KeyPair,
    pub public: PublicKey,
    pub owner: Address,
    /// The proxy contract.
    pub contract: Address,
    config: ProxyPayments,
    chain: Arc<dyn Chain>,
    books: Mutex<Books>,
    store: Mutex<store::Store>,
    pub stats: MoneyStats,
    last_alarm: Mutex<Option<String>>,
    /// The DB held batches at start: this proxy served before and its peers will reconnect.
    pub restarted: bool,
}

impl Payments {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A peer knows more than this proxy: its state was rolled back. Logged and counted,
    /// shown in stats; the caller refuses the peer. Never aborts the process.
    pub fn alarm(&self, reason: String) {
        tracing::error!(alarm = true, "rollback alarm: {reason}");
        self.stats
            .alarms
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.last_alarm.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    /// The client contract of `owner` at this proxy (on TON: derived from the proxy's
    /// storage, read once).
    pub async fn client_contract(&self, owner: &Address) -> Result<Address, String> {
        let (proxy, owner) = (self.contract, *owner);
        self.chain_call(move |c| c.client_contract(&proxy, &owner))
            .await
            .map_err(|e| format!("cannot derive the client contract: {e}"))
    }

    pub async fn worker_contract(&self, owner: &Address) -> Result<Address, String> {
        let (proxy, owner) = (self.contract, *owner);
        self.chain_call(move |c| c.worker_contract(&proxy, &owner))
            .await
            .map_err(|e| format!("cannot derive the worker contract: {e}"))
    }

    /// Runs a blocking chain call off the async runtime.
    async fn chain_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Chain) -> Result<T, cocoon_chain::ChainError> + Send + 'static,
    ) -> Result<T, cocoon_chain::ChainError> {
        let chain = self.chain.clone();
        match tokio::task::spawn_blocking(move || f(chain.as_ref())).await {
            Ok(r) => r,
            Err(e) => Err(cocoon_chain::ChainError::Db {
                path: "chain task".into(),
                message: e.to_string(),
            }),
        }
    }
}
