//! The proxy: accepts attested workers and clients, chooses a worker for each request,
//! relays answers with per-request backpressure, and prices every request (DESIGN §4).

mod client_side;
mod continuation;
mod http;
mod money;
mod relay;
mod routing;
mod worker_side;
mod workers;

pub use money::{MoneyError, ProxyPayments};
pub use routing::RoutingConfig;

use cocoon_attest::{EvidenceKind, Identity, Measurements};
use cocoon_chain::{Chain, Role};
use cocoon_net::{accept, client_peer_policy, serve_over, LinkTiming, RegistryPolicy};
use cocoon_proto::{client_link_server::ClientLinkServer, ProxyParams, MAX_MESSAGE_BYTES};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct ProxyConfig {
    pub name: String,
    pub owner_address: String,
    /// Where clients connect (default port 11002).
    pub client_listen: SocketAddr,
    /// Where workers connect (default port 11001).
    pub worker_listen: SocketAddr,
    /// Stats and health over plain HTTP (default port 11000); None = off.
    pub http_listen: Option<SocketAddr>,
    pub evidence: EvidenceKind,
    pub measurements: Measurements,
    /// DCAP verifier (collateral + cache) for peers with `tdx` evidence; None refuses them.
    pub tdx_verifier: Option<Arc<cocoon_attest::TdxVerifier>>,
    /// Proof-of-work difficulty demanded before TLS; None = the registry's value.
    pub pow_difficulty: Option<u8>,
    pub timing: LinkTiming,
    pub chain: Arc<dyn Chain>,
    /// Paid service (DESIGN §6); None = "open" mode granting free credit (dev only).
    pub payments: Option<ProxyPayments>,
    /// Worker breaker settings (DESIGN §8).
    pub routing: RoutingConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("attestation: {0}")]
    Attest(#[from] cocoon_attest::AttestError),
    #[error("payments: {0}")]
    Money(#[from] MoneyError),
}

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub requests: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub adjusted_tokens: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Client links currently open (past the handshake).
    pub connected_clients: AtomicU64,
    /// nanoTON billed to clients (payments on), as the answers' costs said.
    pub billed_nanoton: AtomicU64,
    /// Requests sent to another worker after the first one failed before answering.
    pub retries: AtomicU64,
    /// Streamed answers continued on another worker after theirs failed mid-answer.
    pub failovers: AtomicU64,
}

/// Requests a proxy relays at once, over all client links; past it clients get
/// `Overloaded` (503 with `Retry-After` for the app).
pub const MAX_IN_FLIGHT: usize = 32_768;
/// Bytes of request bodies a proxy holds at once (bodies stay in memory while their
/// answers stream, for retries and failover).
pub const MAX_IN_FLIGHT_BODY_BYTES: usize = 2 << 30;

pub(crate) struct Shared {
    pub config: ProxyConfig,
    /// Load shedding: requests and body bytes in flight.
    pub inflight: cocoon_net::inflight::InFlight,
    pub identity: Identity,
    pub workers: workers::WorkerTable,
    pub stats: ProxyStats,
    pub payments: Option<Arc<money::Payments>>,
    /// Request metrics (`/metrics`, `rates` in `/jsonstats`).
    pub metrics: Arc<cocoon_net::metrics::NodeMetrics>,
}

impl Shared {
    pub fn proxy_params(&self, protocol_version: u32) -> ProxyParams {
        let (public_key, owner_address, contract_address) = match &self.payments {
            Some(p) => (p.public.0.to_vec(), p.owner.to_hex(), p.contract.to_hex()),
            None => (
                self.identity.public_key().to_vec(),
                self.config.owner_address.clone(),
                String::new(),
            ),
        };
        ProxyParams {
            public_key: public_key.into(),
            owner_address,
            contract_address,
            protocol_version,
            instance_name: self.config.name.clone(),
        }
    }

    fn pow_difficulty(&self) -> u8 {
        self.config
            .pow_difficulty
            .unwrap_or_else(|| self.config.chain.registry().pow_difficulty)
    }
}

/// A started proxy with its bound addresses (useful when ports were 0).
pub struct RunningProxy {
    pub client_addr: SocketAddr,
    pub worker_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningProxy {
    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }

    /// Number of worker links that completed the handshake.
    pub fn worker_count(&self) -> usize {
        self.shared.workers.stats().len()
    }

    /// Number of worker links currently enabled.
    pub fn enabled_worker_count(&self) -> usize {
        self.shared
            .workers
            .stats()
            .iter()
            .filter(|w| w.enabled)
            .count()
    }

    /// Requests each worker link served, by worker instance name.
    pub fn served_by_worker(&self) -> Vec<(String, u64)> {
        self.shared
            .workers
            .stats()
            .into_iter()
            .map(|w| (w.name, w.served))
            .collect()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Bind { addr, source })
}

/// Binds the listeners, starts serving, and returns at once.
pub async fn start(
    config: ProxyConfig,
    shutdown: CancellationToken,
) -> Result<RunningProxy, ProxyError> {
    let identity = Identity::generate(config.evidence, &config.measurements)?;
    let worker_tls = TlsAcceptor::from(identity.server_config(RegistryPolicy::with_tdx(
        config.chain.clone(),
        Role::Worker,
        config.tdx_verifier.clone(),
    ))?);
    let client_tls = TlsAcceptor::from(identity.server_config(client_peer_policy())?);
    let client_listener = bind(config.client_listen).await?;
    let worker_listener = bind(config.worker_listen).await?;
    let http_listener = match config.http_listen {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let local = |l: &TcpListener, fallback| l.local_addr().unwrap_or(fallback);
    let client_addr = local(&client_listener, config.client_listen);
    let worker_addr = local(&worker_listener, config.worker_listen);
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
    let payments = match config.payments.clone() {
        Some(p) => {
            let owner = cocoon_ledger::Address::parse_owner(&config.owner_address);
            let chain = config.chain.clone();
            let opened =
                tokio::task::spawn_blocking(move || money::Payments::open(p, owner, chain))
                    .await
                    .map_err(|e| MoneyError::Db(format!("startup task failed: {e}")))??;
            Some(opened)
        }
        None => {
            tracing::warn!("payments are off: this proxy serves every client for free");
            None
        }
    };
    let restarted = payments.as_ref().is_some_and(|p| p.restarted);
    let workers = workers::WorkerTable::new(config.routing.clone(), restarted);
    let shared = Arc::new(Shared {
        config,
        identity,
        workers,
        stats: Default::default(),
        inflight: cocoon_net::inflight::InFlight::new(MAX_IN_FLIGHT, MAX_IN_FLIGHT_BODY_BYTES),
        payments: payments.clone(),
        metrics: cocoon_net::metrics::NodeMetrics::new(cocoon_net::metrics::Role::Proxy),
    });
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(p) = payments {
        tasks.spawn(p.run(shutdown.clone()));
    }
    // Certificates live one day; renew them in place so links never drop.
    tasks.spawn(cocoon_attest::keep_renewed(
        shared.identity.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(accept_loop(
        shared.clone(),
        worker_listener,
        worker_tls,
        Side::Worker,
        shutdown.clone(),
    ));
    tasks.spawn(accept_loop(
        shared.clone(),
        client_listener,
        client_tls,
        Side::Client,
        shutdown.clone(),
    ));
    if let Some(l) = http_listener {
        tasks.spawn(http::serve(shared.clone(), l, shutdown.clone()));
    }
    tracing::info!(%client_addr, %worker_addr, "proxy listening");
    let task = tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
    Ok(RunningProxy {
        client_addr,
        worker_addr,
        http_addr,
        shared,
        task,
    })
}

/// Runs the proxy until `shutdown`.
pub async fn run(config: ProxyConfig, shutdown: CancellationToken) -> Result<(), ProxyError> {
    let running = start(config, shutdown).await?;
    running.task.await.ok();
    Ok(())
}

/// Most simultaneous connections per listener (handshaking or established). Past it new
/// connections are closed at once, so a flood costs bounded memory.
const MAX_CONNECTIONS: usize = 20_000;

#[derive(Clone, Copy, Debug)]
enum Side {
    Worker,
    Client,
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: TlsAcceptor,
    side: Side,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, from) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(?side, "connection limit reached; dropping new connection");
            continue;
        };
        let shared = shared.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let difficulty = shared.pow_difficulty();
            let stream = match accept(tcp, &tls, difficulty, &shared.config.timing).await {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    shared
                        .stats
                        .rejected_connections
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%from, ?side, "connection refused: {e}");
                    return;
                }
            };
            match side {
                Side::Worker => worker_side::handle(shared, stream).await,
                Side::Client => {
                    let service =
                        ClientLinkServer::new(client_side::ClientSession::new(shared.clone()))
                            .max_decoding_message_size(MAX_MESSAGE_BYTES)
                            .max_encoding_message_size(MAX_MESSAGE_BYTES);
                    let clients = &shared.stats.connected_clients;
                    clients.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) =
                        serve_over(stream, service, &shared.config.timing, shutdown).await
                    {
                        tracing::info!(%from, "client link closed: {e}");
                    }
                    clients.fetch_sub(1, Ordering::Relaxed);
                }
            }
        });
    }
}
