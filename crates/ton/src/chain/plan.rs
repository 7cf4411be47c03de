//! Which TON message carries each ledger op: destination, attached value and body. Pure: the
//! caller supplies the root's and proxies' storage for the ops that need it.

use crate::messages::{self as m, VoucherKind};
use crate::state::{to_ton, ProxyState, RootState};
use crate::TonError;
use cocoon_chain::ChainError;
use cocoon_ledger::{Address, Op, SignedVoucher, VoucherOp};
use tonlib_core::cell::Cell;
use tonlib_core::TonAddress;

/// Gas attached to every operation (multi-hop flows included); what is left returns as
/// `excesses` (`FLOW` in the contracts' tests).
pub const FLOW: u64 = 200_000_000;
/// What a new proxy contract keeps for its own storage (`PROXY_RESERVE` in common.tolk).
pub const PROXY_RESERVE: u64 = 100_000_000;

/// One wallet message.
#[derive(Debug)]
pub struct Planned {
    pub to: TonAddress,
    pub value: u64,
    pub bounce: bool,
    pub body: Cell,
    /// Contracts this op creates or touches, to watch from now on.
    pub watch: Vec<Address>,
}

fn cell(e: TonError) -> ChainError {
    ChainError::BadRequest(format!("cannot build the TON message: {e}"))
}

/// Refuses an op that names another sender: on TON the sender is whoever signs the wallet
/// message, and this node holds one wallet.
fn own(sender: &Address, wallet: &Address) -> Result<(), ChainError> {
    if sender == wallet {
        return Ok(());
    }
    Err(ChainError::NotOwnWallet(format!(
        "on TON an op is sent from this node's wallet {}; this one names {}",
        to_ton(wallet),
        to_ton(sender)
    )))
}

fn kind(op: VoucherOp) -> VoucherKind {
    match op {
        VoucherOp::ClientCharge => VoucherKind::ClientCharge,
        VoucherOp::ClientGrantRefund => VoucherKind::ClientGrantRefund,
        VoucherOp::WorkerPayout => VoucherKind::WorkerPayout,
        VoucherOp::WorkerLastPayout => VoucherKind::WorkerLastPayout,
    }
}

fn voucher(query_id: u64, to: &Address, v: &SignedVoucher) -> Result<Planned, ChainError> {
    let body = m::voucher_with_signature(
        query_id,
        kind(v.op),
        v.cumulative,
        &to_ton(&v.contract),
        &v.signature.0,
    )
    .map_err(cell)?;
    Ok(call(to, FLOW, body))
}

fn call(to: &Address, value: u64, body: Cell) -> Planned {
    Planned {
        to: to_ton(to),
        value,
        bounce: true,
        body,
        watch: vec![*to],
    }
}

/// The ledger address of a derived contract address.
fn from_ton(derived: &Result<TonAddress, TonError>) -> Result<Address, ChainError> {
    match derived {
        Ok(a) => crate::state::from_ton(a).map_err(cell),
        Err(e) => Err(ChainError::BadRequest(format!(
            "cannot derive the contract address: {e}"
        ))),
    }
}

/// The storage of proxy contract `proxy`, which the caller read for this op.
fn deployed_at<'a>(
    state: Option<&'a ProxyState>,
    proxy: &Address,
) -> Result<&'a ProxyState, ChainError> {
    state
        .filter(|s| s.contract.address == *proxy)
        .ok_or_else(|| ChainError::Rejected {
            reason: format!("no proxy contract {} on chain", to_ton(proxy)),
            ledger: None,
        })
}

fn sum(a: u64, b: u64) -> Result<u64, ChainError> {
    a.checked_add(b)
        .ok_or_else(|| ChainError::BadRequest("amount overflows".into()))
}

/// The message for `op`, sent from `wallet`. `proxy` is the storage of the proxy contract the
/// op deploys a client or worker at (None for other ops).
pub fn plan(
    op: &Op,
    wallet: &Address,
    query_id: u64,
    root: (&TonAddress, &RootState),
    proxy_state: Option<&ProxyState>,
) -> Result<Planned, ChainError> {
    let q = query_id;
    Ok(match op {
        Op::Mint { .. } => {
            return Err(ChainError::BadRequest(
                "there is no faucet on TON: fund the wallet with a transfer".into(),
            ))
        }
        Op::Transfer { from, to, amount } => {
            own(from, wallet)?;
            Planned {
                to: to_ton(to),
                value: *amount,
                bounce: false,
                body: Cell::default(),
                watch: Vec::new(),
            }
        }
        Op::DeployProxy {
            owner,
            key,
            params_version,
            stake,
        } => {
            own(owner, wallet)?;
            let (root_address, root) = root;
            if u64::from(root.version) != *params_version {
                return Err(ChainError::Rejected {
                    reason: format!(
                        "the root is at version {}, not {params_version}: read the registry again",
                        root.version
                    ),
                    ledger: None,
                });
            }
            let proxy = root.proxy_address(root_address, &to_ton(owner), &key.0);
            Planned {
                to: root_address.clone(),
                value: sum(sum(*stake, PROXY_RESERVE)?, FLOW)?,
                bounce: true,
                body: m::root_deploy_proxy(q, &key.0, *stake).map_err(cell)?,
                watch: vec![from_ton(&proxy)?],
            }
        }
        Op::ProxyIncreaseStake {
            sender,
            proxy,
            amount,
        } => {
            own(sender, wallet)?;
            let body = m::proxy_increase_stake(q, *amount).map_err(cell)?;
            call(proxy, sum(*amount, FLOW)?, body)
        }
        Op::ProxyWithdraw { sender, proxy } => {
            own(sender, wallet)?;
            call(proxy, FLOW, m::proxy_withdraw(q).map_err(cell)?)
        }
        Op::ProxyRequestClose { sender, proxy } => {
            own(sender, wallet)?;
            call(proxy, FLOW, m::proxy_request_close(q).map_err(cell)?)
        }
        Op::ProxyCompleteClose { sender, proxy } => {
            own(sender, wallet)?;
            call(proxy, FLOW, m::proxy_complete_close(q).map_err(cell)?)
        }
        Op::ProxyAnchor { anchor } => {
            let body = m::anchor_with_signature(
                q,
                &to_ton(&anchor.proxy),
                anchor.seqno,
                &anchor.session_hash.0,
                &anchor.signature.0,
            )
            .map_err(cell)?;
            call(&anchor.proxy, FLOW, body)
        }
        Op::DeployClient {
            owner,
            proxy,
            deposit,
        } => {
            own(owner, wallet)?;
            let client = from_ton(&deployed_at(proxy_state, proxy)?.client_address(owner))?;
            let body = m::deploy_client(q, *deposit).map_err(cell)?;
            let mut p = call(proxy, sum(*deposit, FLOW)?, body);
            p.watch.push(client);
            p
        }
        Op::ClientTopUp {
            sender,
            client,
            amount,
        } => {
            own(sender, wallet)?;
            let body = m::client_top_up(q, *amount).map_err(cell)?;
            call(client, sum(*amount, FLOW)?, body)
        }
        Op::ClientWithdraw { sender, client } => {
            own(sender, wallet)?;
            call(client, FLOW, m::client_withdraw(q).map_err(cell)?)
        }
        Op::ClientRequestClose { sender, client } => {
            own(sender, wallet)?;
            call(client, FLOW, m::client_request_close(q).map_err(cell)?)
        }
        Op::ClientRegister {
            sender,
            client,
            nonce,
        } => {
            own(sender, wallet)?;
            call(client, FLOW, m::client_register(q, *nonce).map_err(cell)?)
        }
        Op::ClientIncreaseStake {
            sender,
            client,
            stake,
        } => {
            own(sender, wallet)?;
            call(
                client,
                FLOW,
                m::client_increase_stake(q, *stake).map_err(cell)?,
            )
        }
        Op::ClientSetSecretHash {
            sender,
            client,
            hash,
        } => {
            own(sender, wallet)?;
            call(
                client,
                FLOW,
                m::client_set_secret_hash(q, hash).map_err(cell)?,
            )
        }
        Op::ClientCharge { client, voucher: v } | Op::ClientGrantRefund { client, voucher: v } => {
            voucher(q, client, v)?
        }
        Op::DeployWorker { owner, proxy } => {
            own(owner, wallet)?;
            let worker = from_ton(&deployed_at(proxy_state, proxy)?.worker_address(owner))?;
            let mut p = call(proxy, FLOW, m::deploy_worker(q).map_err(cell)?);
            p.watch.push(worker);
            p
        }
        Op::WorkerPayout { worker, voucher: v } | Op::WorkerLastPayout { worker, voucher: v } => {
            voucher(q, worker, v)?
        }
    })
}
