//! Links to proxies: dial, verify, handshake, authorize; redial as soon as a link drops.

use crate::payments::auth::{PaidProxy, Payer};
use crate::payments::{PaymentError, Refusal};
use crate::{ClientConfig, Shared};
use cocoon_chain::ledger::Address;
use cocoon_net::{channel_over, dial, WatchedStream};
use cocoon_proto::{
    auth_request::Method, client_connect_reply::Result as Reply,
    client_link_client::ClientLinkClient, AuthRequest, ClientHello, MAX_MESSAGE_BYTES,
};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A proxy link that finished its handshake and may carry requests.
pub(crate) struct ProxyLink {
    pub endpoint: String,
    pub client: ClientLinkClient<Channel>,
    /// Set when the proxy requires payment.
    pub paid: Option<PaidProxy>,
    /// Decaying average of the time the proxy took to start answering, in µs (0 = none yet).
    pub latency_us: AtomicU64,
    /// Requests that failed on this link before the proxy accepted them (link down).
    pub failures: AtomicU64,
}

impl ProxyLink {
    /// Records how long the proxy took to start answering.
    pub fn observe_latency(&self, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 5 + sample / 5
        };
        self.latency_us.store(new, Ordering::Relaxed);
    }

    /// Lower is better: latency, doubled per recent failure.
    fn score(&self) -> u64 {
        let failures = self.failures.load(Ordering::Relaxed).min(16);
        self.latency_us
            .load(Ordering::Relaxed)
            .max(1)
            .saturating_mul(1 << failures)
    }
}

#[derive(Default)]
pub(crate) struct Links {
    ready: RwLock<Vec<Arc<ProxyLink>>>,
}

impl Links {
    /// A ready link not in `tried`, by health and latency: among links whose score is within
    /// 50% of the best, one at random, so load spreads over similar proxies.
    pub fn pick(&self, tried: &[Arc<ProxyLink>]) -> Option<Arc<ProxyLink>> {
        let ready = self.ready.read().unwrap_or_else(|p| p.into_inner());
        let candidates: Vec<_> = ready
            .iter()
            .filter(|l| !tried.iter().any(|t| Arc::ptr_eq(t, l)))
            .collect();
        let best = candidates.iter().map(|l| l.score()).min()?;
        let close: Vec<_> = candidates
            .into_iter()
            .filter(|l| l.score() <= best.saturating_add(best / 2))
            .collect();
        Some(close[rand::thread_rng().gen_range(0..close.len())].clone())
    }

    pub fn count(&self) -> usize {
        self.ready.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Each ready link's health: latency (decaying average, ms) and failed requests.
    pub fn health(&self) -> Vec<serde_json::Value> {
        self.ready
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| {
                let us = l.latency_us.load(Ordering::Relaxed);
                serde_json::json!({
                    "endpoint": l.endpoint,
                    "latency_ms": (us > 0).then(|| us as f64 / 1000.0),
                    "failures": l.failures.load(Ordering::Relaxed),
                    "paid": l.paid.is_some(),
                })
            })
            .collect()
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.ready
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| l.endpoint.clone())
            .collect()
    }

    fn add(&self, link: Arc<ProxyLink>) {
        self.ready
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(link);
    }

    fn remove(&self, link: &Arc<ProxyLink>) {
        self.ready
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|l| !Arc::ptr_eq(l, link));
    }
}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("{0}")]
    Link(String),
    #[error("proxy requires payments; configure [client.payments]")]
    PaymentsRequired,
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// Keeps one link to `endpoint` up until `shutdown`.
pub(crate) async fn link_loop(
    shared: Arc<Shared>,
    endpoint: String,
    tls: Arc<rustls::ClientConfig>,
    shutdown: CancellationToken,
) {
    let config = &shared.config;
    let payer = config.payments.clone().map(|payments| Payer {
        chain: config.chain.clone(),
        owner: Address::parse_owner(&config.owner_address),
        payments,
        books: shared.books.clone(),
        step: config.timing.handshake_timeout,
    });
    let mut backoff = config.reconnect_interval;
    while !shutdown.is_cancelled() {
        match connect(config, payer.as_ref(), &endpoint, tls.clone()).await {
            Ok((link, closed)) => {
                tracing::info!(proxy = %endpoint, paid = link.paid.is_some(), "proxy link ready");
                backoff = config.reconnect_interval;
                let link = Arc::new(link);
                shared.links.add(link.clone());
                let money = async {
                    match (&payer, &link.paid) {
                        (Some(payer), Some(paid)) => {
                            payer
                                .money_loop(link.client.clone(), paid.clone(), endpoint.clone())
                                .await
                        }
                        _ => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = closed.closed() => tracing::warn!(proxy = %endpoint, "proxy link lost; reconnecting"),
                    _ = shutdown.cancelled() => {}
                    refusal = money => {
                        refused(&shared, &endpoint, &refusal);
                        backoff = REFUSED_BACKOFF;
                    }
                }
                shared.links.remove(&link);
            }
            Err(ConnectError::Payment(PaymentError::Refused(refusal))) => {
                refused(&shared, &endpoint, &refusal);
                backoff = REFUSED_BACKOFF;
            }
            Err(e @ ConnectError::PaymentsRequired) => {
                tracing::error!(proxy = %endpoint, "cannot use proxy: {e}");
                backoff = REFUSED_BACKOFF;
            }
            Err(e) => {
                tracing::warn!(proxy = %endpoint, "cannot connect: {e}");
                backoff = (backoff * 2).min(REFUSED_BACKOFF);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Longest wait between attempts; also the wait after a refusal.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);

fn refused(shared: &Shared, endpoint: &str, refusal: &Refusal) {
    shared.stats.proxy_refusals.fetch_add(1, Ordering::Relaxed);
    tracing::error!(proxy = %endpoint, "refusing proxy, link dropped: {refusal}");
}

async fn connect(
    config: &ClientConfig,
    payer: Option<&Payer>,
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(ProxyLink, cocoon_net::ClosedSignal), ConnectError> {
    let link = |e: String| ConnectError::Link(e);
    let (stream, _peer) = dial(endpoint, tls, config.max_pow_difficulty, &config.timing)
        .await
        .map_err(|e| link(e.to_string()))?;
    let (stream, closed) = WatchedStream::new(stream);
    let channel = channel_over(stream, &config.timing)
        .await
        .map_err(|e| link(e.to_string()))?;
    let mut client = ClientLinkClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let hello = ClientHello {
        owner_address: config.owner_address.clone(),
        protocol: Some(cocoon_proto::local_protocol_range()),
        instance_name: config.name.clone(),
    };
    let step = config.timing.handshake_timeout;
    let reply = tokio::time::timeout(step, client.hello(hello))
        .await
        .map_err(|_| link("proxy did not answer hello".into()))?
        .map_err(|s| link(format!("hello failed: {}", s.message())))?
        .into_inner();
    let accepted = match reply.result {
        Some(Reply::Accepted(a)) => a,
        Some(Reply::Refused(r)) => {
            return Err(link(format!(
                "proxy refused: {}",
                cocoon_proto::bounded_text(&r.reason)
            )))
        }
        None => return Err(link("proxy sent an empty hello reply".into())),
    };
    let open = accepted.auth.as_ref().is_some_and(|a| a.open);
    let paid = if open {
        authorize_open(&mut client, step).await?;
        None
    } else {
        let payer = payer.ok_or(ConnectError::PaymentsRequired)?;
        Some(payer.authorize(&mut client, endpoint, &accepted).await?)
    };
    Ok((
        ProxyLink {
            endpoint: endpoint.to_string(),
            client,
            paid,
            latency_us: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        },
        closed,
    ))
}

/// A proxy without payments offers free credit: accept it.
async fn authorize_open(
    client: &mut ClientLinkClient<Channel>,
    step: Duration,
) -> Result<(), ConnectError> {
    let auth = tokio::time::timeout(
        step,
        client.authorize(AuthRequest {
            method: Some(Method::Open(true)),
        }),
    )
    .await
    .map_err(|_| ConnectError::Link("proxy did not answer authorize".into()))?
    .map_err(|s| ConnectError::Link(format!("authorize failed: {}", s.message())))?
    .into_inner();
    if !auth.ok {
        return Err(ConnectError::Link(format!(
            "authorization refused: {}",
            cocoon_proto::bounded_text(&auth.reason)
        )));
    }
    Ok(())
}
