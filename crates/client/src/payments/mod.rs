//! The client's side of payments (DESIGN §4 "Client joins a proxy", §6 "Money"):
//!
//! - [`auth`]: long auth (deploy the client contract if missing, store a fresh secret's hash,
//!   register the proxy's nonce on chain) and short auth (reveal the secret this process
//!   holds for that proxy);
//! - [`book`]: what the client remembers per proxy contract for the life of the process: the
//!   secret, the highest counters and voucher the proxy reported (rollback resistance), and
//!   what the money task did;
//! - [`decide`]: pure settlement decisions (top up, submit a lagging charge);
//! - [`money`]: the per-link task that polls the payment status and acts on chain.

pub mod auth;
pub mod book;
pub mod decide;
pub mod money;

pub use book::{Books, ChainView, ProxyBook, ProxyPaymentView, Refusal};
pub use decide::{top_up_due, unused_balance, ChargeLag};

use cocoon_chain::ledger::{Address, PublicKey};
use cocoon_chain::{Chain, ChainError};
use std::sync::Arc;
use std::time::Duration;

/// `[client.payments]`: how this client pays proxies that require payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPayments {
    /// nanoTON sent when the client contract is deployed, and with each top-up.
    pub deposit: u64,
    /// How often each paid link polls its payment status and reads the chain.
    pub poll: Duration,
    /// How long a held charge voucher may stay above the contract's `tokens_charged`
    /// before the client submits it itself.
    pub charge_lag: Duration,
}

impl ClientPayments {
    pub const DEFAULT_POLL: Duration = Duration::from_secs(1);
    pub const DEFAULT_CHARGE_LAG: Duration = Duration::from_secs(5);

    pub fn with_deposit(deposit: u64) -> Self {
        ClientPayments {
            deposit,
            poll: Self::DEFAULT_POLL,
            charge_lag: Self::DEFAULT_CHARGE_LAG,
        }
    }
}

impl Default for ClientPayments {
    /// 2 TON: twice the default minimum client stake.
    fn default() -> Self {
        Self::with_deposit(2_000_000_000)
    }
}

/// Why paying a proxy, or authorising with it, failed.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("chain call did not complete: {0}")]
    Join(String),
    #[error("proxy hello is unusable: {0}")]
    BadHello(String),
    #[error("proxy contract {0} is not on chain")]
    NoProxyContract(Address),
    #[error(
        "proxy voucher key {announced} is not the key {on_chain} of proxy contract {contract}"
    )]
    KeyMismatch {
        contract: Address,
        announced: PublicKey,
        on_chain: PublicKey,
    },
    #[error("client contract {0} is not on chain")]
    NoClientContract(Address),
    #[error("client contract {contract} is {state}; it cannot authorise or pay (close it and use another owner address)")]
    ContractNotOpen { contract: Address, state: String },
    #[error("proxy refused authorization: {0}")]
    AuthRefused(String),
    #[error("proxy did not answer {0} in time")]
    Timeout(&'static str),
    #[error("{call} failed: {message}")]
    Rpc { call: &'static str, message: String },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Runs a blocking chain call off the async runtime.
pub(crate) async fn on_chain<T, F>(chain: &Arc<dyn Chain>, f: F) -> Result<T, PaymentError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Chain) -> Result<T, ChainError> + Send + 'static,
{
    let chain = chain.clone();
    tokio::task::spawn_blocking(move || f(chain.as_ref()))
        .await
        .map_err(|e| PaymentError::Join(e.to_string()))?
        .map_err(PaymentError::from)
}
