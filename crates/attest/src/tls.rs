//! rustls glue: TLS 1.3-only, AES-GCM-only, no resumption, mutual RA-TLS verifiers.
//!
//! webpki refuses unknown critical extensions, so nothing here lets rustls parse our
//! certificates with webpki: our key is loaded with `CertifiedKey::new`, peer certificates go
//! through [`crate::verify_certificate`], and handshake signatures are checked against the SPKI
//! with `verify_tls13_signature_with_raw_key`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring as ring_provider, WebPkiSupportedAlgorithms};
use rustls::crypto::{verify_tls13_signature_with_raw_key, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::NoServerSessionStorage;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, OtherError,
    ServerConfig, SignatureScheme,
};

use crate::renew::CurrentCert;
use crate::{verify, AttestError, Identity, PolicySource, ALPN_H2};

/// Install ring as the process-wide rustls provider unless one is installed already. Other
/// crates (reqwest, tonic) pick up the process default, so everyone calls this; installing twice
/// is not an error worth reporting.
pub fn ensure_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        let _ = ring_provider::default_provider().install_default();
    }
}

/// The AttestError inside a rustls error produced by our verifiers, if any.
pub fn attest_error(err: &Error) -> Option<&AttestError> {
    match err {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<AttestError>()
        }
        _ => None,
    }
}

/// ring with only the AES-GCM TLS 1.3 suites (DESIGN §3: no ChaCha, nothing TLS 1.2).
fn provider() -> Arc<CryptoProvider> {
    let mut p = ring_provider::default_provider();
    p.cipher_suites = vec![
        ring_provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        ring_provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ];
    Arc::new(p)
}

fn tls_err(e: Error) -> AttestError {
    AttestError::Tls(e.to_string())
}

impl Identity {
    /// Server side: requires and verifies a client RA-TLS certificate against `policy`.
    pub fn server_config(
        &self,
        policy: Arc<dyn PolicySource>,
    ) -> Result<Arc<ServerConfig>, AttestError> {
        ensure_crypto_provider();
        let provider = provider();
        let verifier = Arc::new(RaTlsVerifier::new(policy, &provider));
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(CurrentCert(self.clone())));
        // No resumption: every connection re-runs the attestation check under the current policy.
        cfg.session_storage = Arc::new(NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Client side: presents our certificate and verifies the server's against `policy`.
    /// Connect with [`crate::TLS_SERVER_NAME`]; the name is not checked.
    pub fn client_config(
        &self,
        policy: Arc<dyn PolicySource>,
    ) -> Result<Arc<ClientConfig>, AttestError> {
        ensure_crypto_provider();
        let provider = provider();
        let verifier = Arc::new(RaTlsVerifier::new(policy, &provider));
        let mut cfg = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(CurrentCert(self.clone())));
        cfg.resumption = Resumption::disabled();
        cfg.enable_early_data = false;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// One verifier for both directions: RA-TLS trust is symmetric.
#[derive(Debug)]
struct RaTlsVerifier {
    policy: Arc<dyn PolicySource>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl RaTlsVerifier {
    fn new(policy: Arc<dyn PolicySource>, provider: &CryptoProvider) -> Self {
        RaTlsVerifier {
            policy,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn verify_cert(
        &self,
        side: &str,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), Error> {
        let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        let result = if intermediates.is_empty() {
            // Policy read per handshake so registry changes apply to the next connection.
            verify::verify_certificate(end_entity.as_ref(), &self.policy.current(), now)
        } else {
            Err(AttestError::Certificate(
                "self-signed certificate expected, got a chain".into(),
            ))
        };
        match result {
            Ok(peer) => {
                tracing::debug!(side, kind = %peer.kind, key = %hex::encode(peer.public_key),
                    "RA-TLS peer accepted");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(side, reason = %e, "RA-TLS peer refused");
                Err(Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(e)),
                )))
            }
        }
    }

    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(Error::General(format!(
                "unexpected signature scheme {:?}",
                dss.scheme
            )));
        }
        // The SPKI comes from x509-parser: webpki would refuse the certificate itself.
        let spki = verify::spki_of(cert.as_ref()).map_err(|e| {
            Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })?;
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.as_slice()),
            dss,
            &self.algorithms,
        )
    }
}

impl ServerCertVerifier for RaTlsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.verify_cert("server", end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        None
    }
}

impl ClientCertVerifier for RaTlsVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verify_cert("client", end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
