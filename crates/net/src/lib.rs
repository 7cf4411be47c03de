//! Link plumbing shared by every service: dial and accept (TCP → proof of work → mutual
//! RA-TLS 1.3), then gRPC over HTTP/2 in either direction on the resulting stream.
//!
//! The worker link reverses HTTP/2 roles (the worker dials but serves gRPC), so both
//! "serve over this stream" and "be a gRPC caller over this stream" live here.

pub mod dashboard;
mod grpc;
mod http;
pub mod inflight;
pub mod metrics;
mod policy;
mod watch;

pub use grpc::{channel_over, drain_trailers, serve_over};
pub use http::serve_http;
pub use policy::{client_peer_policy, RegistryPolicy};
pub use watch::{ClosedSignal, WatchedStream};

use cocoon_attest::{peer_identity, PeerIdentity};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Timeouts and keepalive of a link.
#[derive(Clone, Debug)]
pub struct LinkTiming {
    /// Bound on TCP connect + proof of work + TLS handshake.
    pub handshake_timeout: Duration,
    /// An idle link sends an HTTP/2 ping this often …
    pub keepalive_interval: Duration,
    /// … and is closed (failing its requests) when the ping is not answered in time.
    pub keepalive_timeout: Duration,
}

impl Default for LinkTiming {
    fn default() -> Self {
        LinkTiming {
            handshake_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("proof of work failed: {0}")]
    Pow(String),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("peer attestation: {0}")]
    Attestation(String),
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    #[error("gRPC channel: {0}")]
    Channel(String),
}

pub type TlsClientStream = tokio_rustls::client::TlsStream<TcpStream>;
pub type TlsServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// Dials `addr`, solves the listener's proof of work (refusing more than `max_pow`), and
/// runs the RA-TLS handshake. The peer's evidence was checked by the verifier inside `tls`.
pub async fn dial(
    addr: &str,
    tls: Arc<rustls::ClientConfig>,
    max_pow: u8,
    timing: &LinkTiming,
) -> Result<(TlsClientStream, PeerIdentity), NetError> {
    let work = async {
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| NetError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        tcp.set_nodelay(true).ok();
        cocoon_attest::pow::solve(&mut tcp, max_pow, timing.handshake_timeout)
            .await
            .map_err(|e| NetError::Pow(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(cocoon_attest::TLS_SERVER_NAME)
            .map_err(|e| NetError::Attestation(e.to_string()))?;
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(NetError::Tls)?;
        let peer =
            peer_identity(stream.get_ref().1).map_err(|e| NetError::Attestation(e.to_string()))?;
        Ok((stream, peer))
    };
    tokio::time::timeout(timing.handshake_timeout, work)
        .await
        .map_err(|_| NetError::Timeout(timing.handshake_timeout))?
}

/// Accepts one inbound connection: proof of work first (cheap for us, costly for a flood),
/// then the RA-TLS handshake, whose verifier checks the peer's evidence.
pub async fn accept(
    mut tcp: TcpStream,
    tls: &TlsAcceptor,
    pow_difficulty: u8,
    timing: &LinkTiming,
) -> Result<(TlsServerStream, PeerIdentity), NetError> {
    let work = async {
        tcp.set_nodelay(true).ok();
        cocoon_attest::pow::challenge(&mut tcp, pow_difficulty, timing.handshake_timeout)
            .await
            .map_err(|e| NetError::Pow(e.to_string()))?;
        let stream = tls.accept(tcp).await.map_err(NetError::Tls)?;
        let peer =
            peer_identity(stream.get_ref().1).map_err(|e| NetError::Attestation(e.to_string()))?;
        Ok((stream, peer))
    };
    tokio::time::timeout(timing.handshake_timeout, work)
        .await
        .map_err(|_| NetError::Timeout(timing.handshake_timeout))?
}
