//! The bodies of every message a Cocoon node sends to the TON contracts (`contracts/schema.tlb`
//! is the layout; `contracts/src/*.tolk` the contracts that read them), and the signed parts:
//! vouchers and anchors, Ed25519 over the cell hash of their inner cell.
//!
//! The builders are pure (no I/O). `tests/fixtures.rs` checks that they build exactly the
//! cells the contracts' sandbox tests send (`contracts/vectors/messages.json`).

use crate::TonError;
use num_bigint::BigUint;
use ring::signature::Ed25519KeyPair;
use std::sync::Arc;
use tonlib_core::cell::{ArcCell, BagOfCells, Cell, CellBuilder};
use tonlib_core::TonAddress;

/// Operation codes (32-bit prefixes) of the messages in `contracts/schema.tlb`.
pub mod op {
    pub const ROOT_ADD_IMAGE: u32 = 0x3c09_0001;
    pub const ROOT_DEL_IMAGE: u32 = 0x3c09_0002;
    pub const ROOT_ADD_MODEL: u32 = 0x3c09_0003;
    pub const ROOT_DEL_MODEL: u32 = 0x3c09_0004;
    pub const ROOT_REGISTER_PROXY: u32 = 0x3c09_0005;
    pub const ROOT_UNREGISTER_PROXY: u32 = 0x3c09_0006;
    pub const ROOT_UPDATE_PROXY: u32 = 0x3c09_0007;
    pub const ROOT_SET_PARAMS: u32 = 0x3c09_0008;
    pub const ROOT_SET_CODE: u32 = 0x3c09_0009;
    pub const ROOT_CHANGE_OWNER: u32 = 0x3c09_000a;
    pub const ROOT_DEPLOY_PROXY: u32 = 0x3c09_0010;
    pub const PROXY_INCREASE_STAKE: u32 = 0x3c0a_0001;
    pub const PROXY_WITHDRAW: u32 = 0x3c0a_0002;
    pub const PROXY_ANCHOR: u32 = 0x3c0a_0003;
    pub const PROXY_REQUEST_CLOSE: u32 = 0x3c0a_0004;
    pub const PROXY_COMPLETE_CLOSE: u32 = 0x3c0a_0005;
    pub const DEPLOY_CLIENT: u32 = 0x3c0a_0010;
    pub const DEPLOY_WORKER: u32 = 0x3c0a_0011;
    pub const CLIENT_TOP_UP: u32 = 0x3c0b_0001;
    pub const CLIENT_WITHDRAW: u32 = 0x3c0b_0002;
    pub const CLIENT_REQUEST_CLOSE: u32 = 0x3c0b_0003;
    pub const CLIENT_INCREASE_STAKE: u32 = 0x3c0b_0004;
    pub const CLIENT_SET_SECRET_HASH: u32 = 0x3c0b_0005;
    pub const CLIENT_REGISTER: u32 = 0x3c0b_0006;
    pub const CLIENT_CHARGE_SIGNED: u32 = 0x3c0b_0007;
    pub const CLIENT_GRANT_REFUND_SIGNED: u32 = 0x3c0b_0008;
    pub const WORKER_PAYOUT_SIGNED: u32 = 0x3c0e_0001;
    pub const WORKER_LAST_PAYOUT_SIGNED: u32 = 0x3c0e_0002;
    /// Tag of a signed anchor body.
    pub const ANCHOR_TAG: u32 = 0x616e_6331;
}

/// What a voucher authorises; the codes are the embedded chain's (`VoucherOp::code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoucherKind {
    ClientCharge,
    ClientGrantRefund,
    WorkerPayout,
    WorkerLastPayout,
}

impl VoucherKind {
    /// The op inside the signed cell.
    pub fn code(self) -> u32 {
        match self {
            VoucherKind::ClientCharge => 0x636c_6301,
            VoucherKind::ClientGrantRefund => 0x636c_6302,
            VoucherKind::WorkerPayout => 0x776b_7201,
            VoucherKind::WorkerLastPayout => 0x776b_7202,
        }
    }

    /// The op of the message that carries it.
    pub fn message_op(self) -> u32 {
        match self {
            VoucherKind::ClientCharge => op::CLIENT_CHARGE_SIGNED,
            VoucherKind::ClientGrantRefund => op::CLIENT_GRANT_REFUND_SIGNED,
            VoucherKind::WorkerPayout => op::WORKER_PAYOUT_SIGNED,
            VoucherKind::WorkerLastPayout => op::WORKER_LAST_PAYOUT_SIGNED,
        }
    }
}

/// Root parameters as the contracts store them (`params` in schema.tlb).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub price_per_token: u64,
    pub worker_fee_per_token: u64,
    pub prompt_multiplier: u32,
    pub cached_multiplier: u32,
    pub completion_multiplier: u32,
    pub reasoning_multiplier: u32,
    pub min_client_stake: u64,
    pub min_proxy_stake: u64,
    pub client_delay_secs: u32,
    pub proxy_delay_secs: u32,
}

impl TryFrom<&cocoon_ledger::RootParams> for Params {
    type Error = TonError;

    /// The embedded chain's parameters (same names and units); delays must fit 32 bits.
    fn try_from(p: &cocoon_ledger::RootParams) -> Result<Self, TonError> {
        let secs = |s: u64, what: &str| {
            u32::try_from(s).map_err(|_| {
                TonError::Invalid(format!("{what} of {s} s does not fit the contract"))
            })
        };
        Ok(Params {
            price_per_token: p.price_per_token,
            worker_fee_per_token: p.worker_fee_per_token,
            prompt_multiplier: p.prompt_multiplier,
            cached_multiplier: p.cached_multiplier,
            completion_multiplier: p.completion_multiplier,
            reasoning_multiplier: p.reasoning_multiplier,
            min_client_stake: p.min_client_stake,
            min_proxy_stake: p.min_proxy_stake,
            client_delay_secs: secs(p.client_delay_before_close_secs, "client delay")?,
            proxy_delay_secs: secs(p.proxy_delay_before_close_secs, "proxy delay")?,
        })
    }
}

impl From<&Params> for cocoon_ledger::RootParams {
    /// The embedded chain's parameters of the contracts' ones.
    fn from(p: &Params) -> Self {
        cocoon_ledger::RootParams {
            price_per_token: p.price_per_token,
            worker_fee_per_token: p.worker_fee_per_token,
            prompt_multiplier: p.prompt_multiplier,
            cached_multiplier: p.cached_multiplier,
            completion_multiplier: p.completion_multiplier,
            reasoning_multiplier: p.reasoning_multiplier,
            min_client_stake: p.min_client_stake,
            min_proxy_stake: p.min_proxy_stake,
            client_delay_before_close_secs: u64::from(p.client_delay_secs),
            proxy_delay_before_close_secs: u64::from(p.proxy_delay_secs),
        }
    }
}

/// A registered proxy: its contract and `"client_host:port worker_host:port"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyEntry {
    pub proxy: TonAddress,
    pub client_endpoint: String,
    pub worker_endpoint: String,
}

/// Which allow-list an image hash belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageRole {
    Proxy = 0,
    Worker = 1,
}

fn cell_err(e: impl std::fmt::Display) -> TonError {
    TonError::Cell(e.to_string())
}

/// A message body: `op:uint32 query_id:uint64`, then what `fill` stores.
fn body(
    op: u32,
    query_id: u64,
    fill: impl FnOnce(&mut CellBuilder) -> Result<(), TonError>,
) -> Result<Cell, TonError> {
    let mut b = CellBuilder::new();
    b.store_u32(32, op).map_err(cell_err)?;
    b.store_u64(64, query_id).map_err(cell_err)?;
    fill(&mut b)?;
    b.build().map_err(cell_err)
}

fn coins(b: &mut CellBuilder, amount: u64) -> Result<(), TonError> {
    b.store_coins(&BigUint::from(amount)).map_err(cell_err)?;
    Ok(())
}

fn bits256(b: &mut CellBuilder, bytes: &[u8; 32]) -> Result<(), TonError> {
    b.store_slice(bytes).map_err(cell_err)?;
    Ok(())
}

fn address(b: &mut CellBuilder, a: &TonAddress) -> Result<(), TonError> {
    b.store_address(a).map_err(cell_err)?;
    Ok(())
}

fn reference(b: &mut CellBuilder, cell: Cell) -> Result<(), TonError> {
    b.store_reference(&Arc::new(cell)).map_err(cell_err)?;
    Ok(())
}

/// The `params` cell.
pub fn params_cell(p: &Params) -> Result<Cell, TonError> {
    let mut b = CellBuilder::new();
    coins(&mut b, p.price_per_token)?;
    coins(&mut b, p.worker_fee_per_token)?;
    for m in [
        p.prompt_multiplier,
        p.cached_multiplier,
        p.completion_multiplier,
        p.reasoning_multiplier,
    ] {
        b.store_u32(32, m).map_err(cell_err)?;
    }
    coins(&mut b, p.min_client_stake)?;
    coins(&mut b, p.min_proxy_stake)?;
    b.store_u32(32, p.client_delay_secs).map_err(cell_err)?;
    b.store_u32(32, p.proxy_delay_secs).map_err(cell_err)?;
    b.build().map_err(cell_err)
}

fn proxy_entry_cell(e: &ProxyEntry) -> Result<Cell, TonError> {
    let endpoints = format!("{} {}", e.client_endpoint, e.worker_endpoint);
    // One cell holds 127 bytes of text; endpoints are host:port pairs, far shorter.
    if endpoints.len() > 127 {
        return Err(TonError::Invalid(format!(
            "proxy endpoints are {} bytes; at most 127 fit",
            endpoints.len()
        )));
    }
    let mut text = CellBuilder::new();
    text.store_string(&endpoints).map_err(cell_err)?;
    let mut b = CellBuilder::new();
    address(&mut b, &e.proxy)?;
    reference(&mut b, text.build().map_err(cell_err)?)?;
    b.build().map_err(cell_err)
}

// ---------------------------------------------------------------- root (owner-governed)

pub fn root_add_image(query_id: u64, role: ImageRole, hash: &[u8; 32]) -> Result<Cell, TonError> {
    body(op::ROOT_ADD_IMAGE, query_id, |b| {
        b.store_u8(8, role as u8).map_err(cell_err)?;
        bits256(b, hash)
    })
}

pub fn root_del_image(query_id: u64, role: ImageRole, hash: &[u8; 32]) -> Result<Cell, TonError> {
    body(op::ROOT_DEL_IMAGE, query_id, |b| {
        b.store_u8(8, role as u8).map_err(cell_err)?;
        bits256(b, hash)
    })
}

/// `hash` = SHA-256 of the model id.
pub fn root_add_model(query_id: u64, hash: &[u8; 32]) -> Result<Cell, TonError> {
    body(op::ROOT_ADD_MODEL, query_id, |b| bits256(b, hash))
}

pub fn root_del_model(query_id: u64, hash: &[u8; 32]) -> Result<Cell, TonError> {
    body(op::ROOT_DEL_MODEL, query_id, |b| bits256(b, hash))
}

pub fn root_register_proxy(query_id: u64, entry: &ProxyEntry) -> Result<Cell, TonError> {
    let entry = proxy_entry_cell(entry)?;
    body(op::ROOT_REGISTER_PROXY, query_id, |b| reference(b, entry))
}

pub fn root_unregister_proxy(query_id: u64, id: u32) -> Result<Cell, TonError> {
    body(op::ROOT_UNREGISTER_PROXY, query_id, |b| {
        b.store_u32(32, id).map_err(cell_err)?;
        Ok(())
    })
}

pub fn root_update_proxy(query_id: u64, id: u32, entry: &ProxyEntry) -> Result<Cell, TonError> {
    let entry = proxy_entry_cell(entry)?;
    body(op::ROOT_UPDATE_PROXY, query_id, |b| {
        b.store_u32(32, id).map_err(cell_err)?;
        reference(b, entry)
    })
}

pub fn root_set_params(query_id: u64, params: &Params) -> Result<Cell, TonError> {
    let params = params_cell(params)?;
    body(op::ROOT_SET_PARAMS, query_id, |b| reference(b, params))
}

/// New contract code for proxies deployed from now on.
pub fn root_set_code(
    query_id: u64,
    proxy: ArcCell,
    client: ArcCell,
    worker: ArcCell,
) -> Result<Cell, TonError> {
    let mut codes = CellBuilder::new();
    for code in [proxy, client, worker] {
        codes.store_reference(&code).map_err(cell_err)?;
    }
    let codes = codes.build().map_err(cell_err)?;
    body(op::ROOT_SET_CODE, query_id, |b| reference(b, codes))
}

pub fn root_change_owner(query_id: u64, new_owner: &TonAddress) -> Result<Cell, TonError> {
    body(op::ROOT_CHANGE_OWNER, query_id, |b| address(b, new_owner))
}

/// Anyone may deploy a proxy through the root; the sender becomes its owner. Attach the
/// stake plus the proxy's reserve and gas.
pub fn root_deploy_proxy(query_id: u64, key: &[u8; 32], stake: u64) -> Result<Cell, TonError> {
    body(op::ROOT_DEPLOY_PROXY, query_id, |b| {
        bits256(b, key)?;
        coins(b, stake)
    })
}

// ---------------------------------------------------------------- proxy

pub fn proxy_increase_stake(query_id: u64, amount: u64) -> Result<Cell, TonError> {
    body(op::PROXY_INCREASE_STAKE, query_id, |b| coins(b, amount))
}

pub fn proxy_withdraw(query_id: u64) -> Result<Cell, TonError> {
    body(op::PROXY_WITHDRAW, query_id, |_| Ok(()))
}

pub fn proxy_request_close(query_id: u64) -> Result<Cell, TonError> {
    body(op::PROXY_REQUEST_CLOSE, query_id, |_| Ok(()))
}

pub fn proxy_complete_close(query_id: u64) -> Result<Cell, TonError> {
    body(op::PROXY_COMPLETE_CLOSE, query_id, |_| Ok(()))
}

/// Signs the proxy's DB anchor (seqno, session hash) for its contract.
pub fn proxy_anchor(
    query_id: u64,
    key: &Ed25519KeyPair,
    proxy: &TonAddress,
    seqno: u64,
    session_hash: &[u8; 32],
) -> Result<Cell, TonError> {
    signed(
        op::PROXY_ANCHOR,
        query_id,
        key,
        anchor_body(proxy, seqno, session_hash)?,
    )
}

/// The client owner deploys its client contract through the proxy contract.
pub fn deploy_client(query_id: u64, deposit: u64) -> Result<Cell, TonError> {
    body(op::DEPLOY_CLIENT, query_id, |b| coins(b, deposit))
}

pub fn deploy_worker(query_id: u64) -> Result<Cell, TonError> {
    body(op::DEPLOY_WORKER, query_id, |_| Ok(()))
}

// ---------------------------------------------------------------- client

pub fn client_top_up(query_id: u64, amount: u64) -> Result<Cell, TonError> {
    body(op::CLIENT_TOP_UP, query_id, |b| coins(b, amount))
}

pub fn client_withdraw(query_id: u64) -> Result<Cell, TonError> {
    body(op::CLIENT_WITHDRAW, query_id, |_| Ok(()))
}

pub fn client_request_close(query_id: u64) -> Result<Cell, TonError> {
    body(op::CLIENT_REQUEST_CLOSE, query_id, |_| Ok(()))
}

pub fn client_increase_stake(query_id: u64, stake: u64) -> Result<Cell, TonError> {
    body(op::CLIENT_INCREASE_STAKE, query_id, |b| coins(b, stake))
}

pub fn client_set_secret_hash(query_id: u64, hash: &[u8; 32]) -> Result<Cell, TonError> {
    body(op::CLIENT_SET_SECRET_HASH, query_id, |b| bits256(b, hash))
}

pub fn client_register(query_id: u64, nonce: u64) -> Result<Cell, TonError> {
    body(op::CLIENT_REGISTER, query_id, |b| {
        b.store_u64(64, nonce).map_err(cell_err)?;
        Ok(())
    })
}

// ---------------------------------------------------------------- vouchers

/// The signed inner cell of a voucher: `op:uint32 tokens:uint64 contract:MsgAddressInt`.
pub fn voucher_body(
    kind: VoucherKind,
    tokens: u64,
    contract: &TonAddress,
) -> Result<Cell, TonError> {
    let mut b = CellBuilder::new();
    b.store_u32(32, kind.code()).map_err(cell_err)?;
    b.store_u64(64, tokens).map_err(cell_err)?;
    address(&mut b, contract)?;
    b.build().map_err(cell_err)
}

/// A proxy-signed voucher for `contract` (the client or worker contract it pays), as the
/// message its holder submits: cumulative `tokens`, strictly above what the contract has.
pub fn signed_voucher(
    query_id: u64,
    key: &Ed25519KeyPair,
    kind: VoucherKind,
    tokens: u64,
    contract: &TonAddress,
) -> Result<Cell, TonError> {
    signed(
        kind.message_op(),
        query_id,
        key,
        voucher_body(kind, tokens, contract)?,
    )
}

/// `op query_id signature:bits512 ^inner`, the signature over the inner cell's hash.
fn signed(op: u32, query_id: u64, key: &Ed25519KeyPair, inner: Cell) -> Result<Cell, TonError> {
    let mut signature = [0u8; 64];
    signature.copy_from_slice(key.sign(inner.cell_hash().as_slice()).as_ref());
    with_signature(op, query_id, &signature, inner)
}

fn with_signature(
    op: u32,
    query_id: u64,
    signature: &[u8; 64],
    inner: Cell,
) -> Result<Cell, TonError> {
    body(op, query_id, |b| {
        b.store_slice(signature).map_err(cell_err)?;
        reference(b, inner)
    })
}

/// A voucher some proxy signed (over `voucher_body`'s hash), as its holder submits it.
pub fn voucher_with_signature(
    query_id: u64,
    kind: VoucherKind,
    tokens: u64,
    contract: &TonAddress,
    signature: &[u8; 64],
) -> Result<Cell, TonError> {
    let inner = voucher_body(kind, tokens, contract)?;
    with_signature(kind.message_op(), query_id, signature, inner)
}

/// An anchor the proxy signed (over `anchor_body`'s hash), as anyone may deliver it.
pub fn anchor_with_signature(
    query_id: u64,
    proxy: &TonAddress,
    seqno: u64,
    session_hash: &[u8; 32],
    signature: &[u8; 64],
) -> Result<Cell, TonError> {
    let inner = anchor_body(proxy, seqno, session_hash)?;
    with_signature(op::PROXY_ANCHOR, query_id, signature, inner)
}

/// The signed inner cell of an anchor: `tag:uint32 proxy:MsgAddressInt seqno:uint64 hash:bits256`.
pub fn anchor_body(
    proxy: &TonAddress,
    seqno: u64,
    session_hash: &[u8; 32],
) -> Result<Cell, TonError> {
    let mut inner = CellBuilder::new();
    inner.store_u32(32, op::ANCHOR_TAG).map_err(cell_err)?;
    address(&mut inner, proxy)?;
    inner.store_u64(64, seqno).map_err(cell_err)?;
    bits256(&mut inner, session_hash)?;
    inner.build().map_err(cell_err)
}

/// A cell as a bag of cells (no CRC), as APIs and wallets take it.
pub fn to_boc(cell: Cell) -> Result<Vec<u8>, TonError> {
    BagOfCells::from_root(cell)
        .serialize(false)
        .map_err(cell_err)
}

/// Parses a single-root bag of cells.
pub fn from_boc(boc: &[u8]) -> Result<ArcCell, TonError> {
    BagOfCells::parse(boc)
        .and_then(BagOfCells::single_root)
        .map_err(cell_err)
}
