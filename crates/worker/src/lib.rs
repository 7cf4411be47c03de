//! The worker: dials proxies, proves its TEE, serves inference requests from an engine and
//! reports exact token usage (DESIGN §4 "Worker joins a proxy", "A request").

mod admin;
mod body;
mod control;
mod hardware;
mod health;
mod http;
mod payments;
mod serve;
mod weights;

pub use hardware::detect as detect_hardware;
pub use weights::{
    hash_file as hash_weights_file, hash_file_with_progress as hash_weights_file_with_progress,
    WeightsError,
};

use cocoon_attest::{EvidenceKind, Identity, Measurements};
use cocoon_chain::{Chain, Dialer, Role};
use cocoon_engine::Engine;
use cocoon_net::metrics::{ModelId, NodeMetrics, Role as MetricsRole};
use cocoon_net::{dial, serve_over, LinkTiming, RegistryPolicy};
use cocoon_proto::{worker_link_server::WorkerLinkServer, HardwareProfile, MAX_MESSAGE_BYTES};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// Everything a worker needs to run. Runtime handles (engine, chain) are part of it so that
/// tests and `cocoon dev` can build whole networks in one process.
#[derive(Clone)]
pub struct WorkerConfig {
    pub name: String,
    pub owner_address: String,
    /// Full model id `name@revision:weights_hash`; apps call it by `name`.
    pub model_id: String,
    /// Price coefficient ×1000.
    pub coefficient: u32,
    pub max_active_requests: u32,
    /// Proxy endpoints (`host:port` of their worker listeners); empty = all in the registry.
    pub proxies: Vec<String>,
    /// The model's weights file; when set, the worker refuses to start unless it hashes to
    /// the `weights_hash` part of `model_id`.
    pub weights: Option<std::path::PathBuf>,
    /// Health and stats over plain HTTP (default port 12000); None = off.
    pub http_listen: Option<std::net::SocketAddr>,
    /// Bearer token of the operator endpoints (`POST /admin/…` on the HTTP port); None
    /// turns them off (403). Read-only pages stay open either way.
    pub admin_token: Option<String>,
    pub evidence: EvidenceKind,
    pub measurements: Measurements,
    /// DCAP verifier (collateral + cache) for peers with `tdx` evidence; None refuses them.
    pub tdx_verifier: Option<Arc<cocoon_attest::TdxVerifier>>,
    pub hardware: HardwareProfile,
    pub max_pow_difficulty: u8,
    pub engine_probe_interval: Duration,
    pub reconnect_interval: Duration,
    pub timing: LinkTiming,
    pub engine: Arc<dyn Engine>,
    /// The model's tokenizer, for billing answers whose engine reports no usage; None =
    /// such answers are billed zero (with a warning).
    pub token_counter: Option<Arc<dyn cocoon_engine::TokenCounter>>,
    pub chain: Arc<dyn Chain>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid model id {0:?}: expected name@revision:weights_hash")]
    BadModelId(String),
    #[error("attestation: {0}")]
    Attest(#[from] cocoon_attest::AttestError),
    #[error("no proxies configured and none in the registry")]
    NoProxies,
    #[error("{0}")]
    Weights(#[from] WeightsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Base model name apps use (`name` of `name@revision:hash`).
pub fn base_model_name(model_id: &str) -> &str {
    model_id.split('@').next().unwrap_or(model_id)
}

/// Counters for stats.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub requests: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub connected_proxies: AtomicU64,
}

/// State shared by every link and request of one worker.
pub(crate) struct Shared {
    pub config: WorkerConfig,
    pub base_model: String,
    pub engine: Arc<dyn Engine>,
    /// Engine healthy and not disabled by the operator.
    pub enabled: watch::Sender<bool>,
    pub coefficient: watch::Sender<u32>,
    pub operator_disabled: std::sync::atomic::AtomicBool,
    pub engine_ok: std::sync::atomic::AtomicBool,
    pub slots: Arc<Semaphore>,
    pub stats: WorkerStats,
    pub active: AtomicU32,
    pub wallet: Arc<payments::Wallet>,
    /// Request metrics (`/metrics`, `rates` in `/jsonstats`).
    pub metrics: Arc<NodeMetrics>,
    /// This worker's model as a `model` label.
    pub model_label: ModelId,
    /// SHA-256 of `config.admin_token`: requests are checked digest against digest.
    pub admin_digest: Option<[u8; 32]>,
}

/// A started worker.
pub struct RunningWorker {
    shared: Arc<Shared>,
    /// Where the worker's health/stats HTTP server listens, if on.
    pub http_addr: Option<std::net::SocketAddr>,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    pub fn stats(&self) -> &WorkerStats {
        &self.shared.stats
    }

    /// Whether the worker currently offers itself to proxies.
    pub fn is_enabled(&self) -> bool {
        *self.shared.enabled.borrow()
    }

    /// Operator switch: a disabled worker finishes running requests but gets no new ones.
    pub fn set_operator_disabled(&self, disabled: bool) {
        self.shared
            .operator_disabled
            .store(disabled, Ordering::SeqCst);
        health::recompute_enabled(&self.shared, None);
    }

    pub fn set_coefficient(&self, coefficient: u32) {
        self.shared.coefficient.send_replace(coefficient);
    }
}

/// Starts the worker's tasks and returns at once.
pub fn start(
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> Result<RunningWorker, WorkerError> {
    if !config.model_id.contains('@') || base_model_name(&config.model_id).is_empty() {
        return Err(WorkerError::BadModelId(config.model_id.clone()));
    }
    let identity = Identity::generate(config.evidence, &config.measurements)?;
    let tls = identity.client_config(RegistryPolicy::with_tdx(
        config.chain.clone(),
        Role::Proxy,
        config.tdx_verifier.clone(),
    ))?;
    let endpoints = if config.proxies.is_empty() {
        config.chain.registry().proxy_endpoints(Dialer::Worker)
    } else {
        config.proxies.clone()
    };
    if endpoints.is_empty() {
        return Err(WorkerError::NoProxies);
    }
    let http_listener = config.http_listen.map(bind_http).transpose()?;
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
    let shared = Arc::new(Shared {
        base_model: base_model_name(&config.model_id).to_string(),
        engine: config.engine.clone(),
        enabled: watch::channel(false).0,
        coefficient: watch::channel(config.coefficient).0,
        wallet: Default::default(),
        operator_disabled: Default::default(),
        engine_ok: Default::default(),
        slots: Arc::new(Semaphore::new(config.max_active_requests.max(1) as usize)),
        stats: WorkerStats::default(),
        active: AtomicU32::new(0),
        metrics: NodeMetrics::new(MetricsRole::Worker),
        model_label: cocoon_net::metrics::intern(base_model_name(&config.model_id)),
        admin_digest: config.admin_token.as_deref().map(admin::digest),
        config,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(health::probe_loop(shared.clone(), shutdown.clone()));
    // Certificates live one day; renew them in place so links never drop.
    tasks.spawn(cocoon_attest::keep_renewed(identity, shutdown.clone()));
    if let Some(listener) = http_listener {
        tasks.spawn(http::serve(shared.clone(), listener, shutdown.clone()));
    }
    for endpoint in endpoints {
        tasks.spawn(link_loop(
            shared.clone(),
            endpoint,
            tls.clone(),
            shutdown.clone(),
        ));
    }
    let task = tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
    Ok(RunningWorker {
        shared,
        task,
        http_addr,
    })
}

/// Binds without awaiting so that `start` can stay synchronous.
fn bind_http(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, WorkerError> {
    let bind = || {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(std_listener)
    };
    bind().map_err(|source| WorkerError::Bind { addr, source })
}

/// Verifies the configured weights file against the model id (blocking work on a
/// blocking thread). A worker without a weights file serves what its engine loaded.
pub async fn verify_weights(config: &WorkerConfig) -> Result<(), WorkerError> {
    let Some(path) = config.weights.clone() else {
        return Ok(());
    };
    let model_id = config.model_id.clone();
    let hash = tokio::task::spawn_blocking(move || weights::verify(&model_id, &path))
        .await
        .map_err(|e| WeightsError::Read {
            path: Default::default(),
            source: std::io::Error::other(e),
        })??;
    tracing::info!(sha256 = %hash, "model weights verified");
    Ok(())
}

/// Verifies the weights, then runs the worker until `shutdown`.
pub async fn run(config: WorkerConfig, shutdown: CancellationToken) -> Result<(), WorkerError> {
    verify_weights(&config).await?;
    let running = start(config, shutdown)?;
    running.task.await.ok();
    Ok(())
}

/// Keeps one link to one proxy up: dial, serve, and redial with backoff when it drops.
async fn link_loop(
    shared: Arc<Shared>,
    endpoint: String,
    tls: Arc<rustls::ClientConfig>,
    shutdown: CancellationToken,
) {
    let mut backoff = shared.config.reconnect_interval;
    while !shutdown.is_cancelled() {
        let dialed = tokio::select! {
            r = dial(&endpoint, tls.clone(), shared.config.max_pow_difficulty, &shared.config.timing) => r,
            _ = shutdown.cancelled() => return,
        };
        match dialed {
            Ok((stream, _peer)) => {
                tracing::info!(proxy = %endpoint, "connected to proxy");
                backoff = shared.config.reconnect_interval;
                let link_closed = shutdown.child_token();
                let service = serve::LinkService::new(shared.clone(), link_closed.clone());
                let server = WorkerLinkServer::new(service)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES);
                shared
                    .stats
                    .connected_proxies
                    .fetch_add(1, Ordering::Relaxed);
                if let Err(e) = serve_over(stream, server, &shared.config.timing, link_closed).await
                {
                    tracing::info!(proxy = %endpoint, "link closed: {e}");
                }
                shared
                    .stats
                    .connected_proxies
                    .fetch_sub(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(proxy = %endpoint, "cannot connect: {e}");
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
