//! The chain as the services see it: a `Chain` trait over the root registry and the ledger
//! (wallets and the three contract kinds), and its implementations:
//!
//! * [`LocalChain`]: in memory (registry optionally in a JSON file several processes share);
//!   its ledger lives and dies with the process. Tests and the one-process devnet use it.
//! * [`DbChain`]: durable, registry + ledger + append-only history in one SQLite file, one SQL
//!   transaction per op, so a crash never leaves half an op. `cocoon chain serve` serves it.
//! * [`RemoteChain`]: the HTTP client of `cocoon chain serve`, so processes on other hosts
//!   share one devnet.
//!
//! Every method is sync and object-safe: `registry()` is a cached `Arc` (read on every
//! handshake); the others are fast local calls or one HTTP round trip, which async callers
//! should wrap in `spawn_blocking`.

mod bridge;
mod clock;
mod core;
mod db;
mod hexbytes;
pub mod http;
mod local;
mod registry;
mod remote;

pub use crate::core::slice_history;
pub use bridge::RuntimeThread;
pub use clock::Clock;
/// The ledger types ops and states are made of, for callers that only depend on the chain.
pub use cocoon_ledger as ledger;
pub use db::DbChain;
pub use local::LocalChain;
pub use registry::{model_hash, Dialer, ProxyEntry, Registry, Role};
pub use remote::RemoteChain;

use cocoon_ledger::{Address, Effects, LedgerError, Op, PublicKey, SignatureFormat, World};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Errors reading or writing chain state.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot read registry file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write registry file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("registry file {path} is invalid: {message}")]
    Invalid { path: String, message: String },
    /// The ledger refused the op; nothing changed. `ledger` is the typed reason when the
    /// chain is in-process (a remote chain only carries the message). Boxed: ledger
    /// errors carry addresses and would bloat every `Result` of this crate.
    #[error("op rejected: {reason}")]
    Rejected {
        reason: String,
        ledger: Option<Box<LedgerError>>,
    },
    /// The database failed; the op (if any) was not applied.
    #[error("chain database {path}: {message}")]
    Db { path: String, message: String },
    /// A remote chain could not be reached or answered nonsense.
    #[error("chain server {url}: {message}")]
    Remote { url: String, message: String },
    /// The request itself was malformed (bad JSON, bad address).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The op names a sender other than this node's wallet, and the chain only sends from
    /// the wallet it holds (TON: the sender is whoever signs).
    #[error("{0}")]
    NotOwnWallet(String),
}

impl ChainError {
    /// Whether the ledger refused the op for a reason: typed when the chain is in-process,
    /// by the reason's text from a remote chain (which only carries the message).
    fn rejected_as(&self, message: &str, typed: impl Fn(&LedgerError) -> bool) -> bool {
        match self {
            ChainError::Rejected {
                ledger: Some(l), ..
            } => typed(l),
            ChainError::Rejected { reason, .. } => reason.contains(message),
            _ => false,
        }
    }

    /// The contract already accepted this voucher or a later one (another holder
    /// submitted first): for a submitter, nothing went wrong.
    pub fn is_stale_voucher(&self) -> bool {
        self.rejected_as("stale voucher", |l| {
            matches!(l, LedgerError::StaleVoucher { .. })
        })
    }

    /// The proxy contract already holds this anchor seqno or a later one.
    pub fn is_stale_anchor(&self) -> bool {
        self.rejected_as("stale anchor", |l| {
            matches!(l, LedgerError::StaleAnchor { .. })
        })
    }

    /// A contract already exists at the address (a racing deploy).
    pub fn is_already_deployed(&self) -> bool {
        self.rejected_as("already exists", |l| {
            matches!(l, LedgerError::AlreadyDeployed(_))
        })
    }

    pub(crate) fn rejected(e: LedgerError) -> ChainError {
        ChainError::Rejected {
            reason: e.to_string(),
            ledger: Some(Box::new(e)),
        }
    }
}

/// One applied op, as the append-only history records it. Only accepted ops are recorded:
/// a refused op changes nothing, like an external message a validator never includes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// 1, 2, 3… without gaps.
    pub seq: u64,
    /// The simulated block that included it (see [`Tip`]).
    pub block: u64,
    /// Chain time (seconds) it was applied at.
    pub time: u64,
    pub op: Op,
    pub effects: Effects,
}

/// Where the chain stands. A new block starts whenever chain time has moved past the time of
/// the last block, so ops submitted within one second share a block (and a test clock that
/// never advances keeps everything in one block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// Seq of the last applied op (0 = none).
    pub seq: u64,
    /// Last block number (0 = none yet).
    pub block: u64,
    /// Time of the last block.
    pub block_time: u64,
    /// Current chain time (seconds): never below the time of the last applied op.
    pub now: u64,
}

/// The chain: registry reads, ledger state and op submission.
pub trait Chain: Send + Sync + std::fmt::Debug + 'static {
    /// The current root registry. Cheap: callers read it on every handshake so that
    /// allowlist changes apply to new connections.
    fn registry(&self) -> Arc<Registry>;

    /// Applies `op` at the chain's current time, atomically and durably (for durable chains):
    /// on `Ok` the op is in the history; on `Err` nothing changed.
    fn submit(&self, op: Op) -> Result<TxRecord, ChainError>;

    /// Where the chain stands, including its current time.
    fn tip(&self) -> Result<Tip, ChainError>;

    /// Current chain time in seconds.
    fn now(&self) -> Result<u64, ChainError> {
        self.tip().map(|t| t.now)
    }

    /// A snapshot of the whole ledger (wallets and contracts).
    fn world(&self) -> Result<Arc<World>, ChainError>;

    /// Coins held by `address` (wallet or contract).
    fn balance(&self, address: &Address) -> Result<u64, ChainError> {
        self.world().map(|w| w.balance(address))
    }

    /// Applied ops with `seq >= from_seq`, oldest first, at most `limit`.
    fn history(&self, from_seq: u64, limit: usize) -> Result<Vec<TxRecord>, ChainError>;

    /// Moves chain time forward by `secs` (devnet and tests: close delays); returns the new
    /// tip. Time never goes back.
    fn advance(&self, secs: u64) -> Result<Tip, ChainError>;

    /// What proxies sign for this chain's contracts: the embedded chains check the ledger's
    /// byte strings, TON contracts a cell hash.
    fn signature_format(&self) -> SignatureFormat {
        SignatureFormat::Ledger
    }

    /// The proxy contract of (`owner`, `key`) deployed under registry version
    /// `params_version`. The embedded chains hash the three; TON derives the address from
    /// the contract's state init (code and initial data), which may need a read.
    fn proxy_contract(
        &self,
        owner: &Address,
        key: &PublicKey,
        params_version: u64,
    ) -> Result<Address, ChainError> {
        Ok(Address::proxy_contract(owner, key, params_version))
    }

    /// The client contract of `owner` at proxy contract `proxy`.
    fn client_contract(&self, proxy: &Address, owner: &Address) -> Result<Address, ChainError> {
        Ok(Address::client_contract(proxy, owner))
    }

    /// The worker contract of `owner` at proxy contract `proxy`.
    fn worker_contract(&self, proxy: &Address, owner: &Address) -> Result<Address, ChainError> {
        Ok(Address::worker_contract(proxy, owner))
    }

    /// Names contracts the caller will look for in `world()`. The embedded chains show every
    /// contract anyway; TON keeps no list of a proxy's clients, so its view holds only the
    /// contracts a node has named (deployed, derived or watched).
    fn watch(&self, _contracts: &[Address]) {}
}

/// Longest single `advance`: a century keeps chain time far inside what SQLite's signed
/// integers and every deadline computation can hold.
pub const MAX_ADVANCE_SECS: u64 = 100 * 365 * 24 * 3600;

pub(crate) fn check_advance(secs: u64) -> Result<(), ChainError> {
    if secs > MAX_ADVANCE_SECS {
        return Err(ChainError::BadRequest(format!(
            "advance of {secs} s refused: at most {MAX_ADVANCE_SECS} s (100 years) at a time"
        )));
    }
    Ok(())
}
