//! The client: runs next to an app, exposes the OpenAI-compatible API, verifies proxies'
//! attestation before sending anything, and streams answers back (DESIGN §1, §4).

mod api;
mod errors;
mod keys;
mod links;
pub mod payments;
mod request;
pub mod usage_cost;

pub use keys::ApiKey;
pub use payments::{ClientPayments, ProxyPaymentView};
pub use request::RequestDefaults;

use cocoon_attest::{EvidenceKind, Identity, Measurements};
use cocoon_chain::{Chain, Dialer, Role};
use cocoon_net::metrics::{NodeMetrics, Role as MetricsRole};
use cocoon_net::{LinkTiming, RegistryPolicy};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct ClientConfig {
    pub name: String,
    pub owner_address: String,
    /// The app-facing API (default 127.0.0.1:10000).
    pub http_listen: SocketAddr,
    /// Proxy client endpoints (`host:port`); empty = all proxies in the registry.
    pub proxies: Vec<String>,
    pub max_pow_difficulty: u8,
    /// DCAP verifier (collateral + cache) for peers with `tdx` evidence; None refuses them.
    pub tdx_verifier: Option<Arc<cocoon_attest::TdxVerifier>>,
    pub reconnect_interval: Duration,
    pub timing: LinkTiming,
    pub defaults: RequestDefaults,
    pub chain: Arc<dyn Chain>,
    /// `[client.payments]`: required by proxies that charge (their auth challenge is not
    /// open); `None` connects to free proxies only. The owner is `owner_address`.
    pub payments: Option<ClientPayments>,
    /// Bearer keys the API demands (each with optional spend cap and rate limit); empty =
    /// the API is open to whoever can reach `http_listen`.
    pub api_keys: Vec<ApiKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("attestation: {0}")]
    Attest(#[from] cocoon_attest::AttestError),
    #[error("no proxies configured and none in the registry")]
    NoProxies,
}

#[derive(Debug, Default)]
pub struct ClientStats {
    pub requests: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub total_cost: AtomicU64,
    /// Proxy reports refused (rollback detected, invalid voucher): each drops its link.
    pub proxy_refusals: AtomicU64,
}

/// Requests a client holds at once (each an HTTP exchange with an app and a stream on a
/// proxy link); past it apps get 429 with `Retry-After`.
pub const MAX_IN_FLIGHT: usize = 8192;
/// Bytes of request bodies a client holds at once: 64 of the largest bodies, or many small.
pub const MAX_IN_FLIGHT_BODY_BYTES: usize = 1 << 30;

pub(crate) struct Shared {
    pub config: Arc<ClientConfig>,
    pub links: Arc<links::Links>,
    pub stats: ClientStats,
    /// Per proxy contract payment state; outlives the links.
    pub books: Arc<payments::Books>,
    /// Request metrics (`/metrics`, `rates` in `/jsonstats`).
    pub metrics: Arc<NodeMetrics>,
    pub keys: keys::KeyRing,
    /// Load shedding at the app's edge: past it, 429 with `Retry-After`.
    pub inflight: cocoon_net::inflight::InFlight,
}

impl Shared {
    fn record_success(&self, model: &str, cost: u64) {
        self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        self.stats.total_cost.fetch_add(cost, Ordering::Relaxed);
        self.metrics
            .add_money_for(cocoon_net::metrics::intern(model), cost);
    }
}

pub struct RunningClient {
    pub http_addr: SocketAddr,
    shared: Arc<Shared>,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningClient {
    /// Proxy links that completed their handshake.
    pub fn ready_proxies(&self) -> usize {
        self.shared.links.count()
    }

    pub fn stats(&self) -> &ClientStats {
        &self.shared.stats
    }

    /// Payment state per proxy contract (empty without paid proxies).
    pub fn payments(&self) -> Vec<ProxyPaymentView> {
        self.shared.books.views()
    }
}

pub async fn start(
    config: ClientConfig,
    shutdown: CancellationToken,
) -> Result<RunningClient, ClientError> {
    // Apps' machines are not TEEs: the client presents `none` evidence, still bound to its key.
    let identity = Identity::generate(
        EvidenceKind::None,
        &Measurements::for_label("cocoon-client"),
    )?;
    let tls = identity.client_config(RegistryPolicy::with_tdx(
        config.chain.clone(),
        Role::Proxy,
        config.tdx_verifier.clone(),
    ))?;
    let endpoints = if config.proxies.is_empty() {
        config.chain.registry().proxy_endpoints(Dialer::Client)
    } else {
        config.proxies.clone()
    };
    if endpoints.is_empty() {
        return Err(ClientError::NoProxies);
    }
    let listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| ClientError::Bind {
            addr: config.http_listen,
            source,
        })?;
    let http_addr = listener.local_addr().unwrap_or(config.http_listen);
    let config = Arc::new(config);
    let shared = Arc::new(Shared {
        config: config.clone(),
        links: Default::default(),
        stats: Default::default(),
        books: Default::default(),
        metrics: NodeMetrics::new(MetricsRole::Client),
        keys: keys::KeyRing::new(&config.api_keys),
        inflight: cocoon_net::inflight::InFlight::new(MAX_IN_FLIGHT, MAX_IN_FLIGHT_BODY_BYTES),
    });
    let mut tasks = tokio::task::JoinSet::new();
    // Certificates live one day; renew them in place so links never drop.
    tasks.spawn(cocoon_attest::keep_renewed(identity, shutdown.clone()));
    for endpoint in endpoints {
        tasks.spawn(links::link_loop(
            shared.clone(),
            endpoint,
            tls.clone(),
            shutdown.clone(),
        ));
    }
    let app = api::router(shared.clone());
    tasks.spawn(cocoon_net::serve_http(
        listener,
        app,
        shutdown.clone(),
        "client API",
    ));
    tracing::info!(%http_addr, "client API listening");
    let task = tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
    Ok(RunningClient {
        http_addr,
        shared,
        task,
    })
}

pub async fn run(config: ClientConfig, shutdown: CancellationToken) -> Result<(), ClientError> {
    let running = start(config, shutdown).await?;
    running.task.await.ok();
    Ok(())
}
