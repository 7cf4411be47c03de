//! The contracts' storage (`contracts/schema.tlb`) read into the embedded chain's types, and
//! the init data new contracts get — so a node computes the address of any proxy, client or
//! worker contract itself, exactly as the root and proxy contracts derive them.
//!
//! Addresses: the ledger's 32-byte `Address` is the account id of a workchain-0 TON address
//! (every Cocoon contract and node wallet lives in workchain 0).

use crate::messages::{Params, ProxyEntry};
use crate::TonError;
use cocoon_ledger::{
    Address, ClientContract, ContractState, ProxyContract, PublicKey, RootParams, SessionHash,
    WorkerContract,
};
use num_bigint::BigUint;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tonlib_core::cell::{ArcCell, Cell, CellBuilder, CellParser, TonCellError};
use tonlib_core::{TonAddress, TonHash};

fn cell_err(e: impl std::fmt::Display) -> TonError {
    TonError::Cell(e.to_string())
}

/// The TON address (workchain 0) of a ledger address.
pub fn to_ton(a: &Address) -> TonAddress {
    TonAddress::new(0, TonHash::from(a.0))
}

/// The ledger address of a workchain-0 TON address.
pub fn from_ton(a: &TonAddress) -> Result<Address, TonError> {
    if a.workchain != 0 {
        return Err(TonError::Invalid(format!(
            "address {a} is in workchain {}; Cocoon accounts live in workchain 0",
            a.workchain
        )));
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(a.hash_part.as_slice());
    Ok(Address(out))
}

fn coins(p: &mut CellParser, what: &str) -> Result<u64, TonError> {
    let v = p.load_coins().map_err(cell_err)?;
    u64::try_from(v).map_err(|_| TonError::Invalid(format!("{what} exceeds 64 bits")))
}

fn bits256(p: &mut CellParser) -> Result<[u8; 32], TonError> {
    let mut out = [0u8; 32];
    out.copy_from_slice(&p.load_bits(256).map_err(cell_err)?);
    Ok(out)
}

fn load_addr(p: &mut CellParser) -> Result<Address, TonError> {
    from_ton(&p.load_address().map_err(cell_err)?)
}

fn state(code: u8) -> Result<Option<ContractState>, TonError> {
    Ok(match code {
        0 => None,
        1 => Some(ContractState::Open),
        2 => Some(ContractState::Closing),
        3 => Some(ContractState::Closed),
        n => return Err(TonError::Invalid(format!("contract state {n}"))),
    })
}

fn parse_params(cell: &Cell) -> Result<Params, TonError> {
    let mut p = cell.parser();
    let price_per_token = coins(&mut p, "price")?;
    let worker_fee_per_token = coins(&mut p, "worker fee")?;
    let mut m = [0u32; 4];
    for slot in &mut m {
        *slot = p.load_u32(32).map_err(cell_err)?;
    }
    Ok(Params {
        price_per_token,
        worker_fee_per_token,
        prompt_multiplier: m[0],
        cached_multiplier: m[1],
        completion_multiplier: m[2],
        reasoning_multiplier: m[3],
        min_client_stake: coins(&mut p, "min client stake")?,
        min_proxy_stake: coins(&mut p, "min proxy stake")?,
        client_delay_secs: p.load_u32(32).map_err(cell_err)?,
        proxy_delay_secs: p.load_u32(32).map_err(cell_err)?,
    })
}

/// The root registry's storage.
#[derive(Clone, Debug)]
pub struct RootState {
    pub owner: TonAddress,
    /// Bumped on every change; new proxies commit to it.
    pub version: u32,
    pub params: Params,
    params_cell: ArcCell,
    proxy_code: ArcCell,
    client_code: ArcCell,
    worker_code: ArcCell,
    pub proxy_images: BTreeSet<[u8; 32]>,
    pub worker_images: BTreeSet<[u8; 32]>,
    pub models: BTreeSet<[u8; 32]>,
    /// Registered proxies by id.
    pub proxies: BTreeMap<u32, ProxyEntry>,
}

fn hash_set(p: &mut CellParser) -> Result<BTreeSet<[u8; 32]>, TonError> {
    fn key(k: &BigUint) -> Result<[u8; 32], TonCellError> {
        let bytes = k.to_bytes_be();
        let mut out = [0u8; 32];
        if bytes.len() > 32 {
            return Err(TonCellError::InternalError("dict key over 256 bits".into()));
        }
        out[32 - bytes.len()..].copy_from_slice(&bytes);
        Ok(out)
    }
    fn present(p: &mut CellParser) -> Result<bool, TonCellError> {
        p.load_bit()
    }
    let map = p.load_dict(256, key, present).map_err(cell_err)?;
    Ok(map
        .into_iter()
        .filter(|(_, v)| *v)
        .map(|(k, _)| k)
        .collect())
}

fn proxy_entry(cell: &Cell) -> Result<ProxyEntry, TonError> {
    let mut p = cell.parser();
    let proxy = p.load_address().map_err(cell_err)?;
    let text_cell = p.next_reference().map_err(cell_err)?;
    let mut t = text_cell.parser();
    let bytes = t.remaining_bytes();
    let text = t.load_utf8(bytes).map_err(cell_err)?;
    let (client_endpoint, worker_endpoint) = text
        .split_once(' ')
        .ok_or_else(|| TonError::Invalid(format!("proxy endpoints {text:?}")))?;
    Ok(ProxyEntry {
        proxy,
        client_endpoint: client_endpoint.to_string(),
        worker_endpoint: worker_endpoint.to_string(),
    })
}

/// Parses the root's data cell.
pub fn parse_root(data: &Cell) -> Result<RootState, TonError> {
    let mut p = data.parser();
    let owner = p.load_address().map_err(cell_err)?;
    let version = p.load_u32(32).map_err(cell_err)?;
    let _next_proxy_id = p.load_u32(32).map_err(cell_err)?;
    let params_cell = p.next_reference().map_err(cell_err)?;
    let codes = p.next_reference().map_err(cell_err)?;
    let sets = p.next_reference().map_err(cell_err)?;
    let code = |i: usize| {
        codes
            .reference(i)
            .cloned()
            .map_err(|e| TonError::Cell(format!("root codes: {e}")))
    };
    let mut s = sets.parser();
    let proxy_images = hash_set(&mut s)?;
    let worker_images = hash_set(&mut s)?;
    let models = hash_set(&mut s)?;
    fn id(k: &BigUint) -> Result<u32, TonCellError> {
        u32::try_from(k).map_err(|_| TonCellError::InternalError("proxy id".into()))
    }
    fn entry(p: &mut CellParser) -> Result<ArcCell, TonCellError> {
        p.next_reference()
    }
    let proxies = s
        .load_dict(32, id, entry)
        .map_err(cell_err)?
        .into_iter()
        .map(|(id, cell)| Ok((id, proxy_entry(&cell)?)))
        .collect::<Result<_, TonError>>()?;
    Ok(RootState {
        owner,
        version,
        params: parse_params(&params_cell)?,
        params_cell,
        proxy_code: code(0)?,
        client_code: code(1)?,
        worker_code: code(2)?,
        proxy_images,
        worker_images,
        models,
        proxies,
    })
}

/// Which contract an account is, by its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Proxy,
    Client,
    Worker,
}

impl RootState {
    /// Stands in until the first read of the root (which `TonChain::connect` waits for).
    pub(crate) fn placeholder() -> RootState {
        let empty = Arc::new(Cell::default());
        RootState {
            owner: TonAddress::NULL,
            version: 0,
            params: crate::messages::Params::try_from(&RootParams::default())
                .unwrap_or_else(|_| unreachable!("default params fit")),
            params_cell: empty.clone(),
            proxy_code: empty.clone(),
            client_code: empty.clone(),
            worker_code: empty,
            proxy_images: BTreeSet::new(),
            worker_images: BTreeSet::new(),
            models: BTreeSet::new(),
            proxies: BTreeMap::new(),
        }
    }

    /// The kind of contract whose code has this hash (code the root hands out now).
    pub fn kind_of(&self, code: &Cell) -> Option<Kind> {
        let h = code.cell_hash();
        [
            (&self.proxy_code, Kind::Proxy),
            (&self.client_code, Kind::Client),
            (&self.worker_code, Kind::Worker),
        ]
        .into_iter()
        .find(|(c, _)| c.cell_hash() == h)
        .map(|(_, k)| k)
    }

    /// The proxy contract the root deploys for (`owner`, `key`) now.
    pub fn proxy_address(
        &self,
        root: &TonAddress,
        owner: &TonAddress,
        key: &[u8; 32],
    ) -> Result<TonAddress, TonError> {
        let mut ident = CellBuilder::new();
        ident.store_address(owner).map_err(cell_err)?;
        ident.store_slice(key).map_err(cell_err)?;
        ident.store_address(root).map_err(cell_err)?;
        ident.store_u32(32, self.version).map_err(cell_err)?;
        let mut codes = CellBuilder::new();
        codes
            .store_reference(&self.client_code)
            .and_then(|b| b.store_reference(&self.worker_code))
            .map_err(cell_err)?;
        let mut data = CellBuilder::new();
        data.store_u8(8, 0).map_err(cell_err)?; // state: uninit
        data.store_u32(32, 0).map_err(cell_err)?; // unlock_at
        for _ in 0..4 {
            data.store_coins(&BigUint::from(0u32)).map_err(cell_err)?; // buckets
        }
        data.store_u32(32, 0).map_err(cell_err)?; // n_clients
        data.store_u32(32, 0).map_err(cell_err)?; // n_workers
        data.store_u64(64, 0).map_err(cell_err)?; // anchor_seqno
        data.store_slice(&[0u8; 32]).map_err(cell_err)?; // anchor_hash
        data.store_child(ident.build().map_err(cell_err)?)
            .map_err(cell_err)?;
        data.store_reference(&self.params_cell).map_err(cell_err)?;
        data.store_child(codes.build().map_err(cell_err)?)
            .map_err(cell_err)?;
        derive(&self.proxy_code, data)
    }
}

fn derive(code: &ArcCell, mut data: CellBuilder) -> Result<TonAddress, TonError> {
    let data = Arc::new(data.build().map_err(cell_err)?);
    TonAddress::derive(0, code.clone(), data).map_err(cell_err)
}

/// A proxy contract's storage: the ledger's view plus what deploying its clients and workers
/// takes.
#[derive(Clone, Debug)]
pub struct ProxyState {
    pub contract: ProxyContract,
    /// Client and worker contracts not yet closed (TON keeps counts, not lists).
    pub n_clients: u32,
    pub n_workers: u32,
    client_code: ArcCell,
    worker_code: ArcCell,
}

/// Parses a proxy's data cell; `None` while it is not initialised yet.
pub fn parse_proxy(address: Address, data: &Cell) -> Result<Option<ProxyState>, TonError> {
    let mut p = data.parser();
    let Some(state) = state(p.load_u8(8).map_err(cell_err)?)? else {
        return Ok(None);
    };
    let unlock_at = u64::from(p.load_u32(32).map_err(cell_err)?);
    let stake = coins(&mut p, "stake")?;
    let commission = coins(&mut p, "commission")?;
    let client_deposits = coins(&mut p, "client deposits")?;
    let charged = coins(&mut p, "charged")?;
    let n_clients = p.load_u32(32).map_err(cell_err)?;
    let n_workers = p.load_u32(32).map_err(cell_err)?;
    let anchor_seqno = p.load_u64(64).map_err(cell_err)?;
    let anchor_hash = SessionHash(bits256(&mut p)?);
    let ident = p.next_reference().map_err(cell_err)?;
    let params = p.next_reference().map_err(cell_err)?;
    let codes = p.next_reference().map_err(cell_err)?;
    let mut i = ident.parser();
    let owner = load_addr(&mut i)?;
    let key = PublicKey(bits256(&mut i)?);
    let code = |n: usize| {
        codes
            .reference(n)
            .cloned()
            .map_err(|e| TonError::Cell(format!("proxy codes: {e}")))
    };
    Ok(Some(ProxyState {
        contract: ProxyContract {
            address,
            owner,
            key,
            params: RootParams::from(&parse_params(&params)?),
            state,
            unlock_at,
            stake,
            commission,
            client_deposits,
            charged,
            clients: BTreeSet::new(),
            workers: BTreeSet::new(),
            anchor_seqno,
            anchor_hash,
        },
        n_clients,
        n_workers,
        client_code: code(0)?,
        worker_code: code(1)?,
    }))
}

impl ProxyState {
    /// The client contract of `owner` at this proxy (`clientDeployAddress` in proxy.tolk).
    pub fn client_address(&self, owner: &Address) -> Result<TonAddress, TonError> {
        let p = &self.contract;
        let mut ident = CellBuilder::new();
        ident.store_address(&to_ton(owner)).map_err(cell_err)?;
        ident.store_address(&to_ton(&p.address)).map_err(cell_err)?;
        ident.store_slice(&p.key.0).map_err(cell_err)?;
        ident
            .store_coins(&BigUint::from(p.params.price_per_token))
            .map_err(cell_err)?;
        let delay = u32::try_from(p.params.client_delay_before_close_secs)
            .map_err(|_| TonError::Invalid("client delay".into()))?;
        ident.store_u32(32, delay).map_err(cell_err)?;
        let mut data = CellBuilder::new();
        data.store_u8(8, 0).map_err(cell_err)?; // state: uninit
        data.store_coins(&BigUint::from(0u32)).map_err(cell_err)?; // balance
        data.store_coins(&BigUint::from(p.params.min_client_stake))
            .map_err(cell_err)?; // stake
        data.store_u64(64, 0).map_err(cell_err)?; // tokens_charged
        data.store_u32(32, 0).map_err(cell_err)?; // unlock_at
        data.store_u64(64, 0).map_err(cell_err)?; // registered_nonce
        data.store_slice(&[0u8; 32]).map_err(cell_err)?; // secret_hash
        data.store_child(ident.build().map_err(cell_err)?)
            .map_err(cell_err)?;
        derive(&self.client_code, data)
    }

    /// The worker contract of `owner` at this proxy (`workerDeployAddress` in proxy.tolk).
    pub fn worker_address(&self, owner: &Address) -> Result<TonAddress, TonError> {
        let p = &self.contract;
        let mut ident = CellBuilder::new();
        ident.store_address(&to_ton(owner)).map_err(cell_err)?;
        ident.store_address(&to_ton(&p.address)).map_err(cell_err)?;
        ident.store_slice(&p.key.0).map_err(cell_err)?;
        let mut data = CellBuilder::new();
        data.store_u8(8, 0).map_err(cell_err)?; // state: uninit
        data.store_bit(false).map_err(cell_err)?; // pending
        data.store_u64(64, 0).map_err(cell_err)?; // tokens_paid
        data.store_child(ident.build().map_err(cell_err)?)
            .map_err(cell_err)?;
        derive(&self.worker_code, data)
    }
}

/// Parses a client contract's data cell; `None` while it is not initialised yet.
pub fn parse_client(address: Address, data: &Cell) -> Result<Option<ClientContract>, TonError> {
    let mut p = data.parser();
    let Some(state) = state(p.load_u8(8).map_err(cell_err)?)? else {
        return Ok(None);
    };
    let balance = coins(&mut p, "balance")?;
    let stake = coins(&mut p, "stake")?;
    let tokens_charged = p.load_u64(64).map_err(cell_err)?;
    let unlock_at = u64::from(p.load_u32(32).map_err(cell_err)?);
    let registered_nonce = p.load_u64(64).map_err(cell_err)?;
    let secret_hash = bits256(&mut p)?;
    let ident = p.next_reference().map_err(cell_err)?;
    let mut i = ident.parser();
    Ok(Some(ClientContract {
        address,
        owner: load_addr(&mut i)?,
        proxy: load_addr(&mut i)?,
        proxy_key: PublicKey(bits256(&mut i)?),
        state,
        balance,
        stake,
        tokens_charged,
        secret_hash,
        unlock_at,
        registered_nonce,
    }))
}

/// Parses a worker contract's data cell; `None` while it is not initialised yet.
pub fn parse_worker(address: Address, data: &Cell) -> Result<Option<WorkerContract>, TonError> {
    let mut p = data.parser();
    let Some(state) = state(p.load_u8(8).map_err(cell_err)?)? else {
        return Ok(None);
    };
    let _pending = p.load_bit().map_err(cell_err)?;
    let tokens_paid = p.load_u64(64).map_err(cell_err)?;
    let ident = p.next_reference().map_err(cell_err)?;
    let mut i = ident.parser();
    Ok(Some(WorkerContract {
        address,
        owner: load_addr(&mut i)?,
        proxy: load_addr(&mut i)?,
        proxy_key: PublicKey(bits256(&mut i)?),
        state,
        tokens_paid,
    }))
}
