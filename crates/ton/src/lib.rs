//! Cocoon's TON adapter (issue 9): the messages a node sends to the Tolk contracts
//! (`contracts/`), signed vouchers and anchors over cell hashes, node wallets' external
//! messages, and a TON HTTP API (toncenter v2) client with retries and rate limiting.
//!
//! Pure builders ([`messages`], [`wallet`]) are separate from I/O ([`api`]), so what goes on
//! chain is tested byte for byte against the cells the contracts' sandbox tests send.

pub mod api;
pub mod chain;
pub mod deploy;
pub mod messages;
pub mod state;
pub mod tx;
pub mod wallet;

/// The cell type the message builders return.
pub use tonlib_core::cell::Cell;
pub use tonlib_core::TonAddress;

#[derive(Debug, thiserror::Error)]
pub enum TonError {
    #[error("cell: {0}")]
    Cell(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("TON API {url}: {message}")]
    Api { url: String, message: String },
    #[error("TON API {url}: rate limited after {attempts} attempts")]
    RateLimited { url: String, attempts: u32 },
}

/// This machine's clock in unix seconds (wallet message expiry, query ids).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses a raw (`0:abcd…`) or user-friendly (base64url) address.
pub fn parse_address(s: &str) -> Result<TonAddress, TonError> {
    s.parse::<TonAddress>()
        .map_err(|e| TonError::Invalid(format!("address {s:?}: {e}")))
}
