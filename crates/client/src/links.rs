//! Links to proxies: dial, verify, handshake, authorize; redial as soon as a link drops.

use crate::ClientConfig;
use cocoon_net::{channel_over, dial, WatchedStream};
use cocoon_proto::{
    auth_request::Method, client_connect_reply::Result as Reply,
    client_link_client::ClientLinkClient, AuthRequest, ClientHello, MAX_MESSAGE_BYTES,
};
use rand::Rng;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A proxy link that finished its handshake and may carry requests.
pub(crate) struct ProxyLink {
    pub endpoint: String,
    pub client: ClientLinkClient<Channel>,
}

#[derive(Default)]
pub(crate) struct Links {
    ready: RwLock<Vec<Arc<ProxyLink>>>,
}

impl Links {
    /// A ready link, chosen at random so load spreads over proxies.
    pub fn pick(&self) -> Option<Arc<ProxyLink>> {
        let ready = self.ready.read().unwrap_or_else(|p| p.into_inner());
        if ready.is_empty() {
            return None;
        }
        Some(ready[rand::thread_rng().gen_range(0..ready.len())].clone())
    }

    pub fn count(&self) -> usize {
        self.ready.read().unwrap_or_else(|p| p.into_inner()).len()
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

/// Keeps one link to `endpoint` up until `shutdown`.
pub(crate) async fn link_loop(
    config: Arc<ClientConfig>,
    links: Arc<Links>,
    endpoint: String,
    tls: Arc<rustls::ClientConfig>,
    shutdown: CancellationToken,
) {
    let mut backoff = config.reconnect_interval;
    while !shutdown.is_cancelled() {
        match connect(&config, &endpoint, tls.clone()).await {
            Ok((link, closed)) => {
                tracing::info!(proxy = %endpoint, "proxy link ready");
                backoff = config.reconnect_interval;
                let link = Arc::new(link);
                links.add(link.clone());
                tokio::select! {
                    _ = closed.closed() => tracing::warn!(proxy = %endpoint, "proxy link lost; reconnecting"),
                    _ = shutdown.cancelled() => {}
                }
                links.remove(&link);
            }
            Err(e) => {
                tracing::warn!(proxy = %endpoint, "cannot connect: {e}");
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn connect(
    config: &ClientConfig,
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(ProxyLink, cocoon_net::ClosedSignal), String> {
    let (stream, _peer) = dial(endpoint, tls, config.max_pow_difficulty, &config.timing)
        .await
        .map_err(|e| e.to_string())?;
    let (stream, closed) = WatchedStream::new(stream);
    let channel = channel_over(stream, &config.timing)
        .await
        .map_err(|e| e.to_string())?;
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
        .map_err(|_| "proxy did not answer hello".to_string())?
        .map_err(|s| format!("hello failed: {}", s.message()))?
        .into_inner();
    let accepted = match reply.result {
        Some(Reply::Accepted(a)) => a,
        Some(Reply::Refused(r)) => {
            return Err(format!(
                "proxy refused: {}",
                cocoon_proto::bounded_text(&r.reason)
            ))
        }
        None => return Err("proxy sent an empty hello reply".into()),
    };
    let challenge = accepted.auth.unwrap_or_default();
    if !challenge.open {
        // Short/long auth arrive with payments (money issue).
        return Err(
            "proxy requires paid authorization, which this client does not support yet".into(),
        );
    }
    let auth = tokio::time::timeout(
        step,
        client.authorize(AuthRequest {
            method: Some(Method::Open(true)),
        }),
    )
    .await
    .map_err(|_| "proxy did not answer authorize".to_string())?
    .map_err(|s| format!("authorize failed: {}", s.message()))?
    .into_inner();
    if !auth.ok {
        return Err(format!(
            "authorization refused: {}",
            cocoon_proto::bounded_text(&auth.reason)
        ));
    }
    Ok((
        ProxyLink {
            endpoint: endpoint.to_string(),
            client,
        },
        closed,
    ))
}
