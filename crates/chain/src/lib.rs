//! The chain as the services see it: a `Chain` trait over the root registry, and the
//! local (embedded) chain that `cocoon dev` and tests use.
//!
//! The money issue grows this crate into the full embedded chain with contracts and a
//! durable database; for now it holds the registry (allowlists, proxies, prices).

mod hexbytes;
mod local;
mod registry;

pub use local::LocalChain;
pub use registry::{model_hash, ProxyEntry, Registry, Role};

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
}

/// Read access to the chain. Implementations: the local chain now, TON later.
pub trait Chain: Send + Sync + std::fmt::Debug + 'static {
    /// The current root registry. Cheap: callers read it on every handshake so that
    /// allowlist changes apply to new connections.
    fn registry(&self) -> Arc<Registry>;
}
