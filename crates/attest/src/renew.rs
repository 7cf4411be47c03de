//! Certificate renewal without dropping links: TLS configs resolve our certificate through
//! [`CurrentCert`] on every handshake, so [`Identity::renew`] takes effect for new connections
//! while established ones keep running; [`keep_renewed`] renews well before expiry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use tokio_util::sync::CancellationToken;

use crate::Identity;

/// Renew when this fraction of the certificate's validity has passed.
pub const RENEW_AT_FRACTION: f64 = 0.8;
/// Retry delay after a failed renewal (e.g. quote generation hiccup).
pub const RENEW_RETRY: Duration = Duration::from_secs(60);

/// Resolver presenting the identity's current certificate (server and client side).
#[derive(Debug)]
pub(crate) struct CurrentCert(pub(crate) Identity);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified.clone())
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// When the current certificate of `identity` should be renewed: at [`RENEW_AT_FRACTION`] of
/// its validity window.
pub fn renewal_due(identity: &Identity) -> SystemTime {
    let start = identity.issued_at();
    let life = identity
        .expires_at()
        .duration_since(start)
        .unwrap_or_default();
    start + life.mul_f64(RENEW_AT_FRACTION)
}

/// Renew `identity`'s certificate at ~80% of each validity window until `shutdown` is
/// cancelled. Failures are logged and retried every [`RENEW_RETRY`] (the old certificate stays
/// in use meanwhile). Spawn it next to the listeners/dialers using the identity.
pub async fn keep_renewed(identity: Identity, shutdown: CancellationToken) {
    loop {
        let wait = renewal_due(&identity)
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match identity.renew() {
            Ok(()) => tracing::info!(
                key = %hex::encode(identity.public_key()),
                "RA-TLS certificate renewed"
            ),
            Err(e) => {
                tracing::warn!(reason = %e, "RA-TLS certificate renewal failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RENEW_RETRY) => {}
                }
            }
        }
    }
}
