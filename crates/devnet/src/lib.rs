//! A whole Cocoon network in one process: local chain, proxy, workers, client and engines.
//! `cocoon dev` runs it; integration tests start it on OS-chosen ports.

use cocoon_attest::{EvidenceKind, Measurements};
use cocoon_chain::{model_hash, Chain, LocalChain, ProxyEntry, Registry};
use cocoon_client::{ClientConfig, RequestDefaults, RunningClient};
use cocoon_engine::test_engine::{TestEngine, TestEngineConfig};
use cocoon_engine::{Engine, HttpEngine};
use cocoon_net::LinkTiming;
use cocoon_proxy::{ProxyConfig, RunningProxy};
use cocoon_worker::{RunningWorker, WorkerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Sim measurement labels of the devnet images; their image hashes are allowlisted.
pub const PROXY_IMAGE_LABEL: &str = "cocoon-proxy";
pub const WORKER_IMAGE_LABEL: &str = "cocoon-worker";

/// Which engine the devnet's workers call.
#[derive(Clone, Debug)]
pub enum EngineChoice {
    /// One deterministic test engine per worker, in process, on loopback HTTP.
    Test(TestEngineConfig),
    /// An external OpenAI-compatible server, e.g. `http://127.0.0.1:8000/v1`. With
    /// `tokenizer` (the model's GGUF file), workers count tokens themselves when the
    /// server reports no usage.
    External {
        base_url: String,
        model: String,
        tokenizer: Option<std::path::PathBuf>,
    },
    /// The built-in llama.cpp engine on a GGUF file, loaded once and shared by every
    /// worker. `model_id` is `name@revision:sha256`: workers verify the file against it.
    Builtin {
        model_id: String,
        config: cocoon_llama::LlamaConfig,
    },
}

#[derive(Clone, Debug)]
pub struct DevnetConfig {
    pub workers: usize,
    pub engine: EngineChoice,
    /// Client API address (`cocoon dev` uses 127.0.0.1:10000; tests port 0).
    pub client_listen: SocketAddr,
    /// Proxy ports: client link, worker link, HTTP stats. Port 0 = any.
    pub proxy_client_listen: SocketAddr,
    pub proxy_worker_listen: SocketAddr,
    pub proxy_http_listen: Option<SocketAddr>,
    /// Workers' HTTP stats port; with several workers only port 0 (any) makes sense.
    pub worker_http_listen: Option<SocketAddr>,
    pub pow_difficulty: u8,
    /// Coefficient of each worker (×1000); missing entries use 1000.
    pub coefficients: Vec<u32>,
    pub max_active_requests: u32,
    pub timing: LinkTiming,
    pub engine_probe_interval: Duration,
    /// Paid service with funded wallets (DESIGN §6); None = the proxy serves for free.
    pub payments: Option<DevnetPayments>,
    /// The proxy's worker breaker settings.
    pub routing: cocoon_proxy::RoutingConfig,
    /// Bearer keys the client API demands; empty = open.
    pub api_keys: Vec<cocoon_client::ApiKey>,
    /// Every worker's admin token (`POST /admin/…` on its HTTP port); None = those
    /// endpoints are off.
    pub worker_admin_token: Option<String>,
    /// Each role on its own chain handle and wallet (a real network such as TON, where every
    /// node signs with its own wallet); None = one in-memory chain shared by every role,
    /// with funded devnet wallets.
    pub role_chains: Option<RoleChains>,
}

/// The chain handle and owner address of each role.
#[derive(Clone, Debug)]
pub struct RoleChains {
    pub proxy: (Arc<dyn Chain>, String),
    pub client: (Arc<dyn Chain>, String),
    /// One per worker.
    pub workers: Vec<(Arc<dyn Chain>, String)>,
}

/// Money settings of a devnet: every wallet is funded on the local chain so requests are
/// paid from the first one.
#[derive(Clone, Debug)]
pub struct DevnetPayments {
    /// The proxy's key and DB; None = a fresh directory under the system temp dir (the
    /// devnet's chain lives in memory, so its proxy state must start fresh too).
    pub state_dir: Option<std::path::PathBuf>,
    pub commit_interval: Duration,
    pub anchor_interval: Duration,
    pub charge_threshold: u64,
    pub payout_threshold: u64,
    pub idle_settle: Duration,
    /// The client's deposit and top-up, nanoTON.
    pub client_deposit: u64,
    /// Minted into the proxy owner's and the client owner's wallets at start, nanoTON.
    pub faucet: u64,
}

impl DevnetPayments {
    /// Production cadence scaled down so a devnet settles within seconds.
    pub fn fast() -> Self {
        DevnetPayments {
            state_dir: None,
            commit_interval: Duration::from_millis(100),
            anchor_interval: Duration::from_millis(300),
            charge_threshold: 100_000,
            payout_threshold: 100_000,
            idle_settle: Duration::from_secs(1),
            client_deposit: 10 * TON,
            faucet: 1_000 * TON,
        }
    }
}

/// 1 TON in nanoTON.
pub const TON: u64 = 1_000_000_000;
/// Wallet names the devnet funds and uses.
pub const PROXY_OWNER: &str = "dev-proxy-owner";
pub const CLIENT_OWNER: &str = "dev-client-owner";

/// The owner wallet name of devnet worker `i`.
pub fn worker_owner(i: usize) -> String {
    format!("dev-worker-owner-{i}")
}

impl DevnetConfig {
    /// Everything on loopback with OS-chosen ports, fast probes: what tests want.
    pub fn for_tests(workers: usize, engine: TestEngineConfig) -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        DevnetConfig {
            workers,
            engine: EngineChoice::Test(engine),
            client_listen: any,
            proxy_client_listen: any,
            proxy_worker_listen: any,
            proxy_http_listen: Some(any),
            worker_http_listen: Some(any),
            pow_difficulty: 4,
            coefficients: Vec::new(),
            max_active_requests: 64,
            timing: LinkTiming::default(),
            engine_probe_interval: Duration::from_millis(200),
            payments: Some(DevnetPayments::fast()),
            // Short cooldowns so breaker tests see a worker come back within seconds.
            routing: cocoon_proxy::RoutingConfig {
                cooldown: Duration::from_millis(500),
                max_cooldown: Duration::from_secs(4),
                reputation_half_life: Duration::from_millis(500),
                ..Default::default()
            },
            api_keys: Vec::new(),
            worker_admin_token: None,
            role_chains: None,
        }
    }

    fn model_name(&self) -> String {
        match &self.engine {
            EngineChoice::Test(c) => c
                .models
                .first()
                .cloned()
                .unwrap_or_else(|| "test-model".into()),
            EngineChoice::External { model, .. } => model.clone(),
            EngineChoice::Builtin { model_id, .. } => {
                cocoon_worker::base_model_name(model_id).to_string()
            }
        }
    }

    fn model_id(&self) -> String {
        match &self.engine {
            EngineChoice::Builtin { model_id, .. } => model_id.clone(),
            _ => dev_model_id(&self.model_name()),
        }
    }
}

/// The devnet's model id: the test engine has no weights file, so its hash part says so.
pub fn dev_model_id(name: &str) -> String {
    format!("{name}@dev:unverified")
}

/// The registry a devnet starts from: sim evidence allowed, devnet images and the model
/// allowlisted, everything else production-strict.
pub fn dev_registry(model_id: &str, pow_difficulty: u8) -> Registry {
    let mut r = Registry {
        allow_sim: true,
        allow_none: false,
        pow_difficulty,
        ..Default::default()
    };
    r.proxy_image_hashes
        .insert(Measurements::for_label(PROXY_IMAGE_LABEL).image_hash());
    r.worker_image_hashes
        .insert(Measurements::for_label(WORKER_IMAGE_LABEL).image_hash());
    r.model_hashes.insert(model_hash(model_id));
    r
}

pub struct Devnet {
    pub api_url: String,
    pub model: String,
    pub chain: Arc<LocalChain>,
    pub proxy: RunningProxy,
    pub workers: Vec<RunningWorker>,
    /// Test engines (one per worker) when the devnet runs the test engine.
    pub engines: Vec<TestEngine>,
    pub client: RunningClient,
}

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("proxy: {0}")]
    Proxy(#[from] cocoon_proxy::ProxyError),
    #[error("worker: {0}")]
    Worker(#[from] cocoon_worker::WorkerError),
    #[error("client: {0}")]
    Client(#[from] cocoon_client::ClientError),
    #[error("engine: {0}")]
    Engine(String),
    #[error("chain: {0}")]
    Chain(#[from] cocoon_chain::ChainError),
    #[error("network not ready after {0:?}: {1}")]
    NotReady(Duration, String),
}

async fn start_test_engine(
    config: &TestEngineConfig,
    shutdown: &CancellationToken,
) -> Result<(TestEngine, String), DevnetError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| DevnetError::Engine(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DevnetError::Engine(e.to_string()))?;
    let engine = TestEngine::new(config.clone());
    let serving = engine.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = serving.serve(listener, stop).await {
            tracing::warn!("test engine stopped: {e}");
        }
    });
    Ok((engine, format!("http://{addr}/v1")))
}

/// Starts every part and returns once they are started (not necessarily connected:
/// see [`Devnet::wait_ready`]).
pub async fn start(
    config: DevnetConfig,
    shutdown: CancellationToken,
) -> Result<Devnet, DevnetError> {
    let model = config.model_name();
    let model_id = config.model_id();
    let counter: Option<Arc<dyn cocoon_engine::TokenCounter>> = match &config.engine {
        EngineChoice::External {
            tokenizer: Some(path),
            ..
        } => {
            let path = path.clone();
            let tokenizer =
                tokio::task::spawn_blocking(move || cocoon_llama::GgufTokenizer::open(&path))
                    .await
                    .map_err(|e| DevnetError::Engine(e.to_string()))?
                    .map_err(|e| DevnetError::Engine(e.to_string()))?;
            Some(Arc::new(tokenizer))
        }
        _ => None,
    };
    let builtin = match &config.engine {
        EngineChoice::Builtin { config: c, .. } => {
            let c = c.clone();
            let engine = tokio::task::spawn_blocking(move || cocoon_llama::LlamaEngine::load(&c))
                .await
                .map_err(|e| DevnetError::Engine(e.to_string()))?
                .map_err(|e| DevnetError::Engine(e.to_string()))?;
            Some(Arc::new(engine))
        }
        _ => None,
    };
    let chain = LocalChain::new(dev_registry(&model_id, config.pow_difficulty));
    let dyn_chain: Arc<dyn Chain> = chain.clone();
    let shared = (dyn_chain.clone(), String::new());
    let (proxy_chain, proxy_owner) = match &config.role_chains {
        Some(r) => r.proxy.clone(),
        None => (dyn_chain.clone(), PROXY_OWNER.to_string()),
    };
    let proxy_payments = match &config.payments {
        Some(p) => {
            for owner in [PROXY_OWNER, CLIENT_OWNER] {
                if config.role_chains.is_some() {
                    break; // wallets on a real network are funded by their owners
                }
                chain.submit(cocoon_chain::ledger::Op::Mint {
                    to: cocoon_chain::ledger::Address::wallet(owner),
                    amount: p.faucet,
                })?;
            }
            let dir = match &p.state_dir {
                Some(d) => d.clone(),
                None => std::env::temp_dir().join(format!(
                    "cocoon-devnet-{}-{:016x}",
                    std::process::id(),
                    rand_u64()
                )),
            };
            let mut pp = cocoon_proxy::ProxyPayments::new(dir);
            pp.commit_interval = p.commit_interval;
            pp.anchor_interval = p.anchor_interval;
            pp.charge_threshold = p.charge_threshold;
            pp.payout_threshold = p.payout_threshold;
            pp.idle_settle = p.idle_settle;
            Some(pp)
        }
        None => None,
    };
    let proxy = cocoon_proxy::start(
        ProxyConfig {
            name: "proxy-0".into(),
            owner_address: proxy_owner,
            client_listen: config.proxy_client_listen,
            worker_listen: config.proxy_worker_listen,
            http_listen: config.proxy_http_listen,
            evidence: EvidenceKind::Sim,
            measurements: Measurements::for_label(PROXY_IMAGE_LABEL),
            tdx_verifier: None,
            pow_difficulty: None,
            timing: config.timing.clone(),
            chain: proxy_chain,
            payments: proxy_payments,
            routing: config.routing.clone(),
        },
        shutdown.clone(),
    )
    .await?;
    chain.update(|r| {
        r.proxies.push(ProxyEntry {
            name: "proxy-0".into(),
            client_endpoint: proxy.client_addr.to_string(),
            worker_endpoint: proxy.worker_addr.to_string(),
        })
    })?;
    let mut engines = Vec::new();
    let mut workers = Vec::new();
    for i in 0..config.workers {
        let engine: Arc<dyn Engine> = match &config.engine {
            EngineChoice::Test(c) => {
                let (engine, url) = start_test_engine(c, &shutdown).await?;
                engines.push(engine);
                Arc::new(
                    HttpEngine::new(&url, None).map_err(|e| DevnetError::Engine(e.to_string()))?,
                )
            }
            EngineChoice::External { base_url, .. } => Arc::new(
                HttpEngine::new(base_url, None).map_err(|e| DevnetError::Engine(e.to_string()))?,
            ),
            EngineChoice::Builtin { .. } => match &builtin {
                Some(engine) => engine.clone(),
                None => return Err(DevnetError::Engine("built-in engine not loaded".into())),
            },
        };
        let weights = match &config.engine {
            EngineChoice::Builtin { config: c, .. } => Some(c.model_path.clone()),
            _ => None,
        };
        let (worker_chain, owner) = match &config.role_chains {
            Some(r) => r.workers.get(i).cloned().unwrap_or_else(|| shared.clone()),
            None => (dyn_chain.clone(), worker_owner(i)),
        };
        let worker_config = WorkerConfig {
            name: format!("worker-{i}"),
            owner_address: owner,
            model_id: model_id.clone(),
            coefficient: config.coefficients.get(i).copied().unwrap_or(1000),
            max_active_requests: config.max_active_requests,
            proxies: vec![proxy.worker_addr.to_string()],
            http_listen: config.worker_http_listen,
            admin_token: config.worker_admin_token.clone(),
            weights,
            evidence: EvidenceKind::Sim,
            measurements: Measurements::for_label(WORKER_IMAGE_LABEL),
            tdx_verifier: None,
            hardware: cocoon_worker::detect_hardware(),
            max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
            engine_probe_interval: config.engine_probe_interval,
            reconnect_interval: Duration::from_millis(200),
            timing: config.timing.clone(),
            engine,
            token_counter: counter.clone(),
            chain: worker_chain,
        };
        // A worker with a weights file hashes it first and refuses to serve on mismatch.
        cocoon_worker::verify_weights(&worker_config).await?;
        workers.push(cocoon_worker::start(worker_config, shutdown.clone())?);
    }
    let (client_chain, client_owner) = match &config.role_chains {
        Some(r) => r.client.clone(),
        None => (dyn_chain, CLIENT_OWNER.to_string()),
    };
    let client = cocoon_client::start(
        ClientConfig {
            api_keys: config.api_keys.clone(),
            name: "client-0".into(),
            owner_address: client_owner,
            http_listen: config.client_listen,
            proxies: vec![proxy.client_addr.to_string()],
            max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
            tdx_verifier: None,
            reconnect_interval: Duration::from_millis(200),
            timing: config.timing.clone(),
            defaults: RequestDefaults::default(),
            chain: client_chain,
            payments: config.payments.as_ref().map(|p| {
                let mut c = cocoon_client::ClientPayments::with_deposit(p.client_deposit);
                c.poll = Duration::from_millis(200);
                c
            }),
        },
        shutdown.clone(),
    )
    .await?;
    Ok(Devnet {
        api_url: format!("http://{}/v1", client.http_addr),
        model,
        chain,
        proxy,
        workers,
        engines,
        client,
    })
}

impl Devnet {
    /// Waits until the client has a proxy link and every worker is enabled at the proxy.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), DevnetError> {
        let start = tokio::time::Instant::now();
        loop {
            let proxies = self.client.ready_proxies();
            let enabled = self.proxy.enabled_worker_count();
            if proxies > 0 && enabled == self.workers.len() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(DevnetError::NotReady(
                    timeout,
                    format!(
                        "{proxies} proxy links, {enabled}/{} workers enabled",
                        self.workers.len()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A random u64 for unique temp-dir names (no extra dependency for one number).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
