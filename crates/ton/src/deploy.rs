//! Deploying the root registry: the compiled contract code (`contracts/artifacts/*.boc`,
//! written by `npm run artifacts` and checked against the sources by the contract tests,
//! embedded in this crate), the root's initial data, and its address.

use crate::messages::{params_cell, Params};
use crate::TonError;
use std::sync::Arc;
use tonlib_core::cell::{ArcCell, Cell, CellBuilder};
use tonlib_core::tlb_types::block::state_init::StateInit;
use tonlib_core::tlb_types::tlb::TLB;
use tonlib_core::TonAddress;

/// The four contracts' compiled code.
#[derive(Clone, Debug)]
pub struct Codes {
    pub root: ArcCell,
    pub proxy: ArcCell,
    pub client: ArcCell,
    pub worker: ArcCell,
}

impl Codes {
    /// The code this build was made with (`contracts/artifacts/`).
    pub fn embedded() -> Result<Codes, TonError> {
        let load = |name: &str, boc: &[u8]| {
            crate::messages::from_boc(boc)
                .map_err(|e| TonError::Invalid(format!("embedded {name} code: {e}")))
        };
        Ok(Codes {
            root: load(
                "root",
                include_bytes!("../../../contracts/artifacts/root.boc"),
            )?,
            proxy: load(
                "proxy",
                include_bytes!("../../../contracts/artifacts/proxy.boc"),
            )?,
            client: load(
                "client",
                include_bytes!("../../../contracts/artifacts/client.boc"),
            )?,
            worker: load(
                "worker",
                include_bytes!("../../../contracts/artifacts/worker.boc"),
            )?,
        })
    }
}

fn cell_err(e: impl std::fmt::Display) -> TonError {
    TonError::Cell(e.to_string())
}

/// The root's initial data: owner, version 0, next proxy id 0, params, the proxy/client/worker
/// code new proxies get, and empty allow-lists (`root_storage` in schema.tlb).
pub fn root_data(owner: &TonAddress, params: &Params, codes: &Codes) -> Result<Cell, TonError> {
    let mut code_refs = CellBuilder::new();
    for code in [&codes.proxy, &codes.client, &codes.worker] {
        code_refs.store_reference(code).map_err(cell_err)?;
    }
    let mut sets = CellBuilder::new();
    for _ in 0..4 {
        // Four empty dictionaries (HashmapE: bit 0).
        sets.store_bit(false).map_err(cell_err)?;
    }
    let mut b = CellBuilder::new();
    b.store_address(owner).map_err(cell_err)?;
    b.store_u32(32, 0).map_err(cell_err)?;
    b.store_u32(32, 0).map_err(cell_err)?;
    b.store_reference(&Arc::new(params_cell(params)?))
        .map_err(cell_err)?;
    b.store_reference(&Arc::new(code_refs.build().map_err(cell_err)?))
        .map_err(cell_err)?;
    b.store_reference(&Arc::new(sets.build().map_err(cell_err)?))
        .map_err(cell_err)?;
    b.build().map_err(cell_err)
}

/// The root's state init and the address it deploys to (workchain 0).
pub fn root_state_init(
    owner: &TonAddress,
    params: &Params,
    codes: &Codes,
) -> Result<(Cell, TonAddress), TonError> {
    let data = Arc::new(root_data(owner, params, codes)?);
    let init = StateInit::new(codes.root.clone(), data);
    let cell = init.to_cell().map_err(cell_err)?;
    let address = TonAddress::new(0, cell.cell_hash());
    Ok((cell, address))
}

/// What deploying the root did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployed {
    /// The deploy message was sent and the root is active now.
    Sent {
        address: TonAddress,
        message_hash: String,
    },
    /// A root with exactly this owner, params and code is already active there.
    AlreadyActive { address: TonAddress },
}

/// Deploys the root from `wallet` (which pays `value`: storage and gas; the rest stays on the
/// root) and waits until it is active, reporting progress through `progress`.
pub async fn deploy_root(
    api: &crate::api::TonApi,
    wallet: &crate::wallet::NodeWallet,
    owner: &TonAddress,
    params: &Params,
    value: u64,
    wait: std::time::Duration,
    mut progress: impl FnMut(&str),
) -> Result<Deployed, TonError> {
    use crate::api::AccountStatus;
    let codes = Codes::embedded()?;
    let (state_init, address) = root_state_init(owner, params, &codes)?;
    if api.account(&address).await?.status == AccountStatus::Active {
        return Ok(Deployed::AlreadyActive { address });
    }
    let (seqno, deploy_wallet, balance) = wallet_state(api, wallet).await?;
    if balance < u128::from(value) + 50_000_000 {
        return Err(TonError::Invalid(format!(
            "the deployer wallet {} holds {} nanoTON; deploying needs {value} plus about 0.05 TON of fees",
            wallet.address(),
            balance
        )));
    }
    progress(&format!(
        "deploying the root to {address} from wallet {} (seqno {seqno})",
        wallet.address()
    ));
    let expire_at = u32::try_from(crate::unix_now() + 120).unwrap_or(u32::MAX);
    let message = crate::wallet::Outgoing {
        to: address.clone(),
        value,
        bounce: false,
        body: Cell::default(),
        state_init: Some(state_init),
    };
    let boc = wallet.transfer(seqno, expire_at, &[message], deploy_wallet)?;
    let message_hash = api.send_boc(&boc).await?;
    progress(&format!(
        "sent (message {message_hash}); waiting for the root to become active"
    ));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if api.account(&address).await?.status == AccountStatus::Active {
            return Ok(Deployed::Sent {
                address,
                message_hash,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TonError::Invalid(format!(
                "the root at {address} is not active after {wait:?}; the message may still land \
                 (check the address in an explorer) or may have expired — run the command again"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// A wallet's next seqno, whether its first message must deploy it, and its balance.
pub async fn wallet_state(
    api: &crate::api::TonApi,
    wallet: &crate::wallet::NodeWallet,
) -> Result<(u32, bool, u128), TonError> {
    use crate::api::{AccountStatus, StackValue};
    let own = api.account(wallet.address()).await?;
    match own.status {
        AccountStatus::Active => {
            let r = api.run_get_method(wallet.address(), "seqno", &[]).await?;
            match r.stack.first() {
                Some(StackValue::Int(n)) if r.exit_code == 0 => Ok((
                    u32::try_from(*n).map_err(|_| TonError::Invalid("wallet seqno".into()))?,
                    false,
                    own.balance,
                )),
                _ => Err(TonError::Invalid(format!(
                    "the wallet's seqno get-method failed (exit code {})",
                    r.exit_code
                ))),
            }
        }
        // A wallet that was funded but never sent anything deploys itself with its first
        // message.
        AccountStatus::Uninitialized => Ok((0, true, own.balance)),
        AccountStatus::Frozen => Err(TonError::Invalid(format!(
            "wallet {} is frozen",
            wallet.address()
        ))),
    }
}

/// Sends one message from `wallet` (root administration: allow-lists, params, proxies) and
/// waits until the wallet has sent it (its seqno moved). Whether the contract accepted it
/// shows in the contract's state afterwards.
pub async fn send_and_wait(
    api: &crate::api::TonApi,
    wallet: &crate::wallet::NodeWallet,
    message: crate::wallet::Outgoing,
    wait: std::time::Duration,
) -> Result<(), TonError> {
    let (seqno, deploy, _) = wallet_state(api, wallet).await?;
    let expire_at = u32::try_from(crate::unix_now() + wait.as_secs().max(60)).unwrap_or(u32::MAX);
    let deadline = tokio::time::Instant::now() + wait;
    let poll = std::time::Duration::from_millis(500);
    if send_from(
        api,
        wallet,
        (seqno, deploy),
        message,
        expire_at,
        deadline,
        poll,
    )
    .await?
    {
        return Ok(());
    }
    Err(TonError::Invalid(format!(
        "wallet {} has not sent the message after {wait:?}",
        wallet.address()
    )))
}

/// Sends `message` from `wallet` at its current `(seqno, deploy)` (from [`wallet_state`]),
/// expiring at `expire_at`, and polls until the wallet's seqno moves past it: `false` when it
/// has not by `deadline` (the message may still land before it expires).
pub async fn send_from(
    api: &crate::api::TonApi,
    wallet: &crate::wallet::NodeWallet,
    (seqno, deploy): (u32, bool),
    message: crate::wallet::Outgoing,
    expire_at: u32,
    deadline: tokio::time::Instant,
    poll: std::time::Duration,
) -> Result<bool, TonError> {
    let boc = wallet.transfer(seqno, expire_at, &[message], deploy)?;
    api.send_boc(&boc).await?;
    loop {
        if wallet_state(api, wallet).await?.0 > seqno {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(poll).await;
    }
}
