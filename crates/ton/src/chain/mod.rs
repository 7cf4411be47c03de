//! `TonChain`: the `Chain` of a node on a real TON network (testnet or mainnet), through a TON
//! HTTP API endpoint.
//!
//! * **Registry**: read from the root contract's storage (params, allowed images and models,
//!   registered proxies; version = the root's), refreshed in the background. What the root
//!   does not hold — the attestation policy (sim/none evidence, PoW difficulty, MRTD/RTMR
//!   allowlists, pinned roots, TCB statuses) — comes from the node's config.
//! * **Submit**: an op becomes one message from the node's own wallet (v4r2/v5r1) to the
//!   contract that handles it; the call returns once the wallet has sent it and every
//!   contract it reached has processed it, and fails with the contract's error (by exit code,
//!   read from the transactions) when one refused. An op naming another sender is refused:
//!   on TON the sender is whoever signs.
//! * **World**: built from the storage of the contracts this node knows of — the registered
//!   proxies and every contract it deployed, addressed or asked the address of — plus its
//!   wallet's balance. TON keeps no list of a proxy's clients; a contract no one named is not
//!   in the view (the embedded chains show everything).
//! * **Addresses** are derived locally from the contracts' code and init data, exactly as the
//!   root and proxy contracts derive them; **vouchers and anchors** are signed over cell
//!   hashes (`SignatureFormat::TonCell`).
//!
//! Time cannot be moved on TON (`advance` is refused); `history` lists the ops this process
//! submitted (a TON explorer shows everything else).

mod plan;

pub use plan::{FLOW, PROXY_RESERVE};

use crate::api::{AccountStatus, ApiConfig, TonApi, Transaction};
use crate::messages::from_boc;
use crate::state::{self, from_ton, to_ton, Kind, ProxyState, RootState};
use crate::tx;
use crate::wallet::{NodeWallet, Outgoing, WalletVersion};
use crate::TonError;
use cocoon_chain::{Chain, ChainError, ProxyEntry, Registry, RuntimeThread, Tip, TxRecord};
use cocoon_ledger::{Address, Effects, Op, PublicKey, SignatureFormat, World};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tonlib_core::TonAddress;

/// How a node reaches TON and which wallet it sends from.
#[derive(Clone)]
pub struct TonChainConfig {
    pub api: ApiConfig,
    /// The root registry contract.
    pub root: TonAddress,
    /// The Ed25519 seed of the node's wallet.
    pub wallet_seed: [u8; 32],
    pub wallet_version: WalletVersion,
    /// Registry fields the root does not hold (attestation policy); its chain-held fields
    /// are overwritten by the root's.
    pub policy: Registry,
    /// How often the registry is read again.
    pub registry_refresh: Duration,
    /// How long a submitted op may take to be processed before `submit` gives up.
    pub confirm_timeout: Duration,
    /// How often a pending op is checked.
    pub poll: Duration,
    /// How long a world snapshot is reused (submits invalidate it).
    pub world_ttl: Duration,
    /// Transactions asked per page when looking for an op's (up to 10 pages back).
    pub tx_page: u32,
}

impl std::fmt::Debug for TonChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonChainConfig")
            .field("api", &self.api.base_url)
            .field("root", &self.root.to_hex())
            .field("wallet_version", &self.wallet_version)
            .finish_non_exhaustive()
    }
}

impl TonChainConfig {
    /// Defaults for a public network: registry every 30 s, ops confirmed within 3 minutes,
    /// polled every 2 s.
    pub fn new(api: ApiConfig, root: TonAddress, wallet_seed: [u8; 32]) -> Self {
        TonChainConfig {
            api,
            root,
            wallet_seed,
            wallet_version: WalletVersion::V4R2,
            policy: Registry::default(),
            registry_refresh: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(180),
            poll: Duration::from_secs(2),
            world_ttl: Duration::from_secs(2),
            tx_page: 20,
        }
    }
}

/// Messages sent by one op are followed this many contracts deep (the longest flow, a worker
/// payout, is wallet → worker → proxy → worker).
const MAX_TRACE_DEPTH: usize = 4;
/// Pages of transactions read at most when looking for one message's.
const MAX_PAGES: usize = 10;
/// What the wallet must hold beyond an op's value for its own fees.
const WALLET_FEE_MARGIN: u64 = 50_000_000;

struct Inner {
    api: TonApi,
    wallet: NodeWallet,
    wallet_address: Address,
    root: TonAddress,
    cfg: TonChainConfig,
    root_state: RwLock<Arc<RootState>>,
    registry: RwLock<Arc<Registry>>,
    /// Proxy storage by address (ident and codes never change; used to derive addresses).
    proxies: Mutex<HashMap<Address, ProxyState>>,
    watched: Mutex<BTreeSet<Address>>,
    /// The last snapshot, kept only while it held every watched contract: a contract not
    /// there yet (a client about to deploy) may appear any moment.
    world: Mutex<Option<(Instant, Arc<World>)>>,
    /// One wallet message at a time: each takes the next seqno.
    sending: tokio::sync::Mutex<()>,
    log: Mutex<Vec<TxRecord>>,
    query_id: AtomicU64,
    /// Whether the endpoint reports the network's time (see `now`); unknown until asked.
    reports_time: std::sync::OnceLock<bool>,
}

/// A node's view of the chain through a TON HTTP API.
pub struct TonChain {
    inner: Arc<Inner>,
    /// Dropping it ends the runtime thread (and the registry refresher with it).
    rt: RuntimeThread,
}

impl std::fmt::Debug for TonChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonChain")
            .field("api", &self.inner.cfg.api.base_url)
            .field("root", &self.inner.root.to_hex())
            .field("wallet", &self.inner.wallet)
            .finish()
    }
}

fn api_err(e: TonError) -> ChainError {
    match e {
        TonError::Api { url, message } => ChainError::Remote { url, message },
        TonError::RateLimited { url, attempts } => ChainError::Remote {
            url,
            message: format!("rate limited after {attempts} attempts"),
        },
        other => ChainError::BadRequest(other.to_string()),
    }
}

/// The contracts' error codes (contracts/README.md) as the embedded chain words them, so
/// callers' checks (`is_stale_voucher`…) work the same on both.
fn refusal(code: i32) -> &'static str {
    match code {
        100 => "unknown operation",
        101 => "not the owner",
        102 => "only the proxy contract may send this",
        103 => "only the root may initialise a proxy",
        104 => "sender is not the client contract",
        105 => "sender is not the worker contract",
        110 => "contract is not open",
        111 => "contract is closed",
        112 => "contract is not closing",
        113 => "close delay has not passed",
        114 => "contract already exists",
        115 => "client or worker contracts are still open",
        116 => "a payout is already in flight",
        120 => "attached value too low",
        121 => "amount is zero",
        122 => "stake too low",
        123 => "nothing to withdraw",
        124 => "insufficient funds",
        125 => "accounting invariant would break",
        126 => "bad params",
        130 => "voucher of another kind",
        131 => "voucher bound to another contract",
        132 => "bad signature",
        133 => "stale voucher",
        134 => "stale anchor",
        140 => "unknown image role",
        141 => "already in the set",
        142 => "not found",
        _ => "the contract refused the message",
    }
}

impl TonChain {
    /// Connects: reads the root once (a wrong root or endpoint fails here), then refreshes
    /// the registry in the background.
    pub fn connect(cfg: TonChainConfig) -> Result<Arc<TonChain>, ChainError> {
        let wallet = NodeWallet::from_seed(&cfg.wallet_seed, cfg.wallet_version)
            .map_err(|e| ChainError::BadRequest(format!("wallet: {e}")))?;
        let wallet_address = from_ton(wallet.address()).map_err(api_err)?;
        let api = TonApi::new(cfg.api.clone()).map_err(api_err)?;
        let rt = RuntimeThread::start("ton-chain").map_err(ChainError::BadRequest)?;
        let root = cfg.root.clone();
        let placeholder = Arc::new(RootState::placeholder());
        let inner = Arc::new(Inner {
            api,
            wallet,
            wallet_address,
            root,
            registry: RwLock::new(Arc::new(cfg.policy.clone())),
            cfg,
            root_state: RwLock::new(placeholder),
            proxies: Mutex::new(HashMap::new()),
            watched: Mutex::new(BTreeSet::new()),
            world: Mutex::new(None),
            sending: tokio::sync::Mutex::new(()),
            log: Mutex::new(Vec::new()),
            query_id: AtomicU64::new(crate::unix_now() << 16),
            reports_time: std::sync::OnceLock::new(),
        });
        let chain = Arc::new(TonChain {
            inner: inner.clone(),
            rt,
        });
        chain.block(|i| async move { i.read_root().await.map(|_| ()) })?;
        let every = inner.cfg.registry_refresh;
        let weak = Arc::downgrade(&inner);
        chain.rt.handle().spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(i) = weak.upgrade() else { return };
                if let Err(e) = i.read_root().await {
                    // Keep the last registry: an API hiccup must not take the node down.
                    tracing::warn!("TON registry refresh failed: {e}");
                }
            }
        });
        Ok(chain)
    }

    /// This node's wallet address.
    pub fn wallet_address(&self) -> &TonAddress {
        self.inner.wallet.address()
    }

    /// The contract of `owner` at `proxy` that `derive` computes from the proxy's storage
    /// (read once), watched from now on.
    fn derive_at(
        &self,
        proxy: &Address,
        owner: &Address,
        derive: fn(&ProxyState, &Address) -> Result<TonAddress, TonError>,
    ) -> Result<Address, ChainError> {
        let (proxy, owner) = (*proxy, *owner);
        self.block(move |i| async move {
            let p = i.proxy(&proxy).await?;
            let a = derive(&p, &owner)
                .and_then(|a| from_ton(&a))
                .map_err(api_err)?;
            i.watch([a]);
            Ok(a)
        })
    }

    /// Runs `f` on the chain's runtime and waits for it.
    fn block<T, F, Fut>(&self, f: F) -> Result<T, ChainError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, ChainError>> + Send + 'static,
    {
        self.rt
            .block(f(self.inner.clone()))
            .ok_or_else(|| ChainError::Remote {
                url: self.inner.cfg.api.base_url.clone(),
                message: "the TON runtime stopped".into(),
            })?
    }
}

impl Inner {
    fn root_state(&self) -> Arc<RootState> {
        self.root_state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds contracts to the view; a new one makes the cached snapshot stale.
    fn watch(&self, addresses: impl IntoIterator<Item = Address>) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        let before = watched.len();
        watched.extend(addresses);
        if watched.len() != before {
            *self.world.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Reads the root's storage and rebuilds the registry from it.
    async fn read_root(&self) -> Result<Arc<RootState>, ChainError> {
        let account = self.api.account(&self.root).await.map_err(api_err)?;
        if account.status != AccountStatus::Active {
            return Err(ChainError::BadRequest(format!(
                "no root contract at {} (deploy one with `cocoon chain deploy-root`)",
                self.root
            )));
        }
        let data = from_boc(&account.data).map_err(api_err)?;
        let root = Arc::new(state::parse_root(&data).map_err(api_err)?);
        let mut registry = self.cfg.policy.clone();
        registry.version = u64::from(root.version);
        registry.params = cocoon_ledger::RootParams::from(&root.params);
        registry.proxy_image_hashes = root.proxy_images.clone();
        registry.worker_image_hashes = root.worker_images.clone();
        registry.model_hashes = root.models.clone();
        registry.proxies = root
            .proxies
            .values()
            .map(|e| ProxyEntry {
                name: e.proxy.to_base64_url(),
                client_endpoint: e.client_endpoint.clone(),
                worker_endpoint: e.worker_endpoint.clone(),
            })
            .collect();
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
        *self.root_state.write().unwrap_or_else(|p| p.into_inner()) = root.clone();
        Ok(root)
    }

    /// A proxy contract's storage (cached: what addresses derive from never changes).
    async fn proxy(&self, proxy: &Address) -> Result<ProxyState, ChainError> {
        if let Some(p) = self
            .proxies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(proxy)
        {
            return Ok(p.clone());
        }
        let account = self.api.account(&to_ton(proxy)).await.map_err(api_err)?;
        let parsed = match account.status {
            AccountStatus::Active => from_boc(&account.data)
                .and_then(|d| state::parse_proxy(*proxy, &d))
                .map_err(api_err)?,
            _ => None,
        };
        let p = parsed.ok_or_else(|| ChainError::Rejected {
            reason: format!("no proxy contract {} on chain", to_ton(proxy)),
            ledger: None,
        })?;
        self.watch([*proxy]);
        self.proxies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*proxy, p.clone());
        Ok(p)
    }

    async fn seqno(&self) -> Result<(u32, bool, u128), ChainError> {
        crate::deploy::wallet_state(&self.api, &self.wallet)
            .await
            .map_err(api_err)
    }

    async fn submit(self: Arc<Self>, op: Op) -> Result<TxRecord, ChainError> {
        let root = self.root_state();
        let proxy_state = match &op {
            Op::DeployClient { proxy, .. } | Op::DeployWorker { proxy, .. } => {
                Some(self.proxy(proxy).await?)
            }
            _ => None,
        };
        let query_id = self.query_id.fetch_add(1, Relaxed);
        let planned = plan::plan(
            &op,
            &self.wallet_address,
            query_id,
            (&self.root, &root),
            proxy_state.as_ref(),
        )?;
        self.watch(planned.watch.iter().copied());
        let sending = self.sending.lock().await;
        let (seqno, deploy, balance) = self.seqno().await?;
        let needed = u128::from(planned.value) + u128::from(WALLET_FEE_MARGIN);
        if balance < needed {
            return Err(ChainError::Rejected {
                reason: format!(
                    "insufficient funds: wallet {} holds {balance} nanoTON, the op needs {needed} \
                     (its value plus fees)",
                    self.wallet.address()
                ),
                ledger: None,
            });
        }
        let timeout = self.cfg.confirm_timeout;
        let now = self.now().await?;
        let expire_at = u32::try_from(now + timeout.as_secs().max(60)).unwrap_or(u32::MAX);
        let body_hash = planned.body.cell_hash();
        let message = Outgoing {
            to: planned.to.clone(),
            value: planned.value,
            bounce: planned.bounce,
            body: planned.body,
            state_init: None,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let sent = crate::deploy::send_from(
            &self.api,
            &self.wallet,
            (seqno, deploy),
            message,
            expire_at,
            deadline,
            self.cfg.poll,
        )
        .await
        .map_err(api_err)?;
        if !sent {
            return Err(self.unconfirmed("the wallet has not sent it"));
        }
        drop(sending);
        let time = self
            .trace(
                self.wallet.address().clone(),
                &planned.to,
                body_hash,
                now.saturating_sub(60),
                deadline,
            )
            .await?;
        *self.world.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let record = TxRecord {
            seq: log.len() as u64 + 1,
            block: 0,
            time,
            op,
            effects: Effects::none(),
        };
        log.push(record.clone());
        Ok(record)
    }

    /// The network's time: the endpoint's when it reports one (a local sandbox, whose clock
    /// tests move), else this machine's clock (TON's block times follow wall-clock time within
    /// seconds). Asked once: an endpoint that does not report it is not asked again.
    async fn now(&self) -> Result<u64, ChainError> {
        if self.reports_time.get() == Some(&false) {
            return Ok(crate::unix_now());
        }
        let (_, utime) = self.api.masterchain().await.map_err(api_err)?;
        let _ = self.reports_time.set(utime.is_some());
        Ok(utime.unwrap_or_else(crate::unix_now))
    }

    fn unconfirmed(&self, what: &str) -> ChainError {
        ChainError::Remote {
            url: self.cfg.api.base_url.clone(),
            message: format!(
                "op not confirmed within {:?} ({what}); it may still land — read the contract \
                 before sending it again",
                self.cfg.confirm_timeout
            ),
        }
    }

    /// Follows the message (`from` → `to`, body hash) through every Cocoon contract it
    /// reaches; fails with the first refusal. Returns the first transaction's time.
    async fn trace(
        &self,
        from: TonAddress,
        to: &TonAddress,
        body_hash: tonlib_core::TonHash,
        since: u64,
        deadline: tokio::time::Instant,
    ) -> Result<u64, ChainError> {
        let mut frontier = vec![(from, to.clone(), body_hash)];
        let mut first_time = None;
        for _ in 0..MAX_TRACE_DEPTH {
            let mut next = Vec::new();
            for (source, dest, hash) in frontier {
                let tx = self.find(&source, &dest, &hash, since, deadline).await?;
                first_time.get_or_insert(tx.utime);
                let cell = match &tx.data {
                    Some(d) => from_boc(d).map_err(api_err)?,
                    None => {
                        return Err(ChainError::Remote {
                            url: self.cfg.api.base_url.clone(),
                            message: "the API gave a transaction without its data".into(),
                        })
                    }
                };
                let outcome = tx::outcome(&cell).map_err(api_err)?;
                if let Some(code) = outcome.failure_code() {
                    return Err(ChainError::Rejected {
                        reason: format!(
                            "{} (exit code {code} at {})",
                            refusal(code),
                            dest.to_base64_url()
                        ),
                        ledger: None,
                    });
                }
                for out in &tx.out_msgs {
                    let (Ok(d), Some(body)) = (crate::parse_address(&out.destination), &out.body)
                    else {
                        continue;
                    };
                    if self.follows(&d) {
                        let h = from_boc(body).map_err(api_err)?.cell_hash();
                        next.push((dest.clone(), d, h));
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(first_time.unwrap_or_else(crate::unix_now))
    }

    /// Whether a message to `d` belongs to the op's flow: Cocoon contracts only (owner
    /// wallets receiving payments and excesses process nothing of ours).
    fn follows(&self, d: &TonAddress) -> bool {
        if *d == self.root {
            return true;
        }
        let Ok(a) = from_ton(d) else { return false };
        a != self.wallet_address
            && self
                .watched
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&a)
    }

    /// The transaction of `dest` that processed the message from `source` with this body.
    async fn find(
        &self,
        source: &TonAddress,
        dest: &TonAddress,
        body_hash: &tonlib_core::TonHash,
        since: u64,
        deadline: tokio::time::Instant,
    ) -> Result<Transaction, ChainError> {
        loop {
            // Newest first, paging back (a busy contract may have processed many messages
            // since) until transactions older than the op.
            let mut cursor: Option<crate::api::TxId> = None;
            for _ in 0..MAX_PAGES {
                let page = self
                    .api
                    .transactions(dest, self.cfg.tx_page, cursor.as_ref())
                    .await
                    .map_err(api_err)?;
                // The cursor's own transaction starts the next page: skip it.
                let fresh: Vec<Transaction> = page
                    .into_iter()
                    .filter(|t| cursor.as_ref() != Some(&t.id))
                    .collect();
                let Some(oldest) = fresh.last() else { break };
                let (oldest_id, oldest_time) = (oldest.id.clone(), oldest.utime);
                for tx in fresh {
                    let Some(m) = &tx.in_msg else { continue };
                    let from_source = crate::parse_address(&m.source).is_ok_and(|s| s == *source);
                    let same_body = m
                        .body
                        .as_deref()
                        .and_then(|b| from_boc(b).ok())
                        .is_some_and(|c| c.cell_hash() == *body_hash);
                    if from_source && same_body {
                        return Ok(tx);
                    }
                }
                if oldest_time < since {
                    break;
                }
                cursor = Some(oldest_id);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.unconfirmed(&format!("no transaction at {dest} yet")));
            }
            tokio::time::sleep(self.cfg.poll).await;
        }
    }

    async fn world(&self) -> Result<Arc<World>, ChainError> {
        if let Some((at, w)) = &*self.world.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < self.cfg.world_ttl {
                return Ok(w.clone());
            }
        }
        let root = self.root_state();
        let mut addresses: BTreeSet<Address> = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for e in root.proxies.values() {
            if let Ok(a) = from_ton(&e.proxy) {
                addresses.insert(a);
            }
        }
        let mut world = World::new(cocoon_ledger::RootParams::from(&root.params));
        world.now = self.now().await?;
        let mut complete = true;
        let own = self
            .api
            .account(self.wallet.address())
            .await
            .map_err(api_err)?;
        world
            .accounts
            .insert(self.wallet_address, saturate(own.balance));
        for a in addresses {
            let account = self.api.account(&to_ton(&a)).await.map_err(api_err)?;
            if account.status != AccountStatus::Active {
                complete = false;
                continue;
            }
            let (Ok(code), Ok(data)) = (from_boc(&account.code), from_boc(&account.data)) else {
                continue;
            };
            let parsed = match root.kind_of(&code) {
                Some(Kind::Proxy) => state::parse_proxy(a, &data).map(|p| {
                    p.map(|p| {
                        self.proxies
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(a, p.clone());
                        world.proxies.insert(a, p.contract);
                    })
                }),
                Some(Kind::Client) => state::parse_client(a, &data).map(|c| {
                    c.map(|c| {
                        world.clients.insert(a, c);
                    })
                }),
                Some(Kind::Worker) => state::parse_worker(a, &data).map(|w| {
                    w.map(|w| {
                        world.workers.insert(a, w);
                    })
                }),
                None => Ok(None),
            };
            match parsed {
                Ok(Some(())) => {
                    world.accounts.insert(a, saturate(account.balance));
                }
                Ok(None) => complete = false,
                Err(e) => tracing::warn!("contract {} has unreadable storage: {e}", to_ton(&a)),
            }
        }
        // TON keeps counts of a proxy's open contracts; list the ones this node knows.
        let open_clients: Vec<(Address, Address)> = world
            .clients
            .values()
            .filter(|c| c.state != cocoon_ledger::ContractState::Closed)
            .map(|c| (c.proxy, c.address))
            .collect();
        let open_workers: Vec<(Address, Address)> = world
            .workers
            .values()
            .filter(|w| w.state != cocoon_ledger::ContractState::Closed)
            .map(|w| (w.proxy, w.address))
            .collect();
        for (proxy, client) in open_clients {
            if let Some(p) = world.proxies.get_mut(&proxy) {
                p.clients.insert(client);
            }
        }
        for (proxy, worker) in open_workers {
            if let Some(p) = world.proxies.get_mut(&proxy) {
                p.workers.insert(worker);
            }
        }
        let world = Arc::new(world);
        *self.world.lock().unwrap_or_else(|p| p.into_inner()) =
            complete.then(|| (Instant::now(), world.clone()));
        Ok(world)
    }
}

fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl Chain for TonChain {
    fn registry(&self) -> Arc<Registry> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn submit(&self, op: Op) -> Result<TxRecord, ChainError> {
        self.block(move |i| i.submit(op))
    }

    fn tip(&self) -> Result<Tip, ChainError> {
        let seq = self
            .inner
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len() as u64;
        let (block, utime) =
            self.block(|i| async move { i.api.masterchain().await.map_err(api_err) })?;
        let now = utime.unwrap_or_else(crate::unix_now);
        Ok(Tip {
            seq,
            block,
            block_time: now,
            now,
        })
    }

    fn world(&self) -> Result<Arc<World>, ChainError> {
        self.block(|i| async move { i.world().await })
    }

    fn balance(&self, address: &Address) -> Result<u64, ChainError> {
        let a = to_ton(address);
        self.block(move |i| async move {
            let info = i.api.account(&a).await.map_err(api_err)?;
            Ok(saturate(info.balance))
        })
    }

    fn history(&self, from_seq: u64, limit: usize) -> Result<Vec<TxRecord>, ChainError> {
        let log = self.inner.log.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cocoon_chain::slice_history(&log, from_seq, limit))
    }

    fn advance(&self, _secs: u64) -> Result<Tip, ChainError> {
        Err(ChainError::BadRequest(
            "time cannot be moved on TON; close delays pass in real time".into(),
        ))
    }

    fn signature_format(&self) -> SignatureFormat {
        SignatureFormat::TonCell
    }

    fn proxy_contract(
        &self,
        owner: &Address,
        key: &PublicKey,
        params_version: u64,
    ) -> Result<Address, ChainError> {
        let root = self.inner.root_state();
        if u64::from(root.version) != params_version {
            return Err(ChainError::BadRequest(format!(
                "the root is at version {}; the proxy contract of version {params_version} \
                 cannot be derived from it",
                root.version
            )));
        }
        let address = root
            .proxy_address(&self.inner.root, &to_ton(owner), &key.0)
            .and_then(|a| from_ton(&a))
            .map_err(api_err)?;
        self.inner.watch([address]);
        Ok(address)
    }

    fn watch(&self, contracts: &[Address]) {
        self.inner.watch(contracts.iter().copied());
    }

    fn client_contract(&self, proxy: &Address, owner: &Address) -> Result<Address, ChainError> {
        self.derive_at(proxy, owner, ProxyState::client_address)
    }

    fn worker_contract(&self, proxy: &Address, owner: &Address) -> Result<Address, ChainError> {
        self.derive_at(proxy, owner, ProxyState::worker_address)
    }
}
