//! Pure payment logic (DESIGN §6): pricing and adjusted tokens, proxy-signed vouchers, the
//! client/worker/proxy contract state machines, the proxy's credit and counters, and a
//! [`World`] that applies operations to wallets and contracts.
//!
//! No I/O, no clocks (time is always a parameter, in seconds), no async: every rule here
//! can be unit- and property-tested, and the embedded chain and the proxy reuse it as is.
//! All amounts are `u64` nanoTON or adjusted tokens, with checked arithmetic throughout.

mod address;
mod anchor;
mod contracts;
mod counters;
mod credit;
mod error;
mod pricing;
mod signing;
mod voucher;
mod world;

pub use address::{Address, PublicKey};
pub use anchor::{SessionHash, SignedAnchor, ANCHOR_MESSAGE_LEN};
pub use contracts::{
    ClientContract, ContractState, Effects, ProxyContract, Transfer, TransferKind, WorkerContract,
};
pub use counters::{CounterView, PeerCounters, SeenCounters};
pub use credit::{ClientAccount, OnChainClient, ReservationId, Settlement};
pub use error::{LedgerError, Result};
pub use pricing::{
    adjusted, Charge, RootParams, TokenClass, TokenCounts, COEFFICIENT_ONE, MULTIPLIER_ONE,
};
pub use signing::SignatureFormat;
pub use voucher::{
    keypair_from_seed, public_key, Signature, SignedVoucher, Voucher, VoucherOp,
    VOUCHER_MESSAGE_LEN,
};
pub use world::{Op, World};
