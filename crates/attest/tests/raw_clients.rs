//! Clients built by hand with plain rustls: one without a certificate, one presenting a
//! genuine certificate without its private key. The RA-TLS server must refuse both.

use std::sync::Arc;

use cocoon_attest::{EvidenceKind, Identity, Measurements, Policy, TLS_SERVER_NAME};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Test-only: accepts any server so only the server's client-auth decision is exercised.
#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn client_builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>
{
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
}

/// Handshake `client_cfg` against an RA-TLS server accepting everything; the server's result.
async fn server_result(client_cfg: rustls::ClientConfig) -> Result<(), std::io::Error> {
    let server_id = Identity::generate(EvidenceKind::Sim, &Measurements::for_label("s")).unwrap();
    let server_cfg = server_id
        .server_config(Arc::new(Policy::allow_all()))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio_rustls::TlsAcceptor::from(server_cfg)
            .accept(tcp)
            .await
            .map(|_| ())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
    if let Ok(mut tls) = tokio_rustls::TlsConnector::from(Arc::new(client_cfg))
        .connect(name, tcp)
        .await
    {
        let mut buf = [0u8; 1];
        assert!(!matches!(tls.read(&mut buf).await, Ok(1)));
    }
    server.await.unwrap()
}

#[tokio::test]
async fn client_without_certificate_refused() {
    let err = server_result(client_builder().with_no_client_auth())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no certificates"), "{err}");
}

#[tokio::test]
async fn stolen_certificate_without_its_key_refused() {
    // The genuine certificate of `victim`, but the handshake is signed by another Ed25519 key.
    let victim = Identity::generate(EvidenceKind::Sim, &Measurements::for_label("v")).unwrap();
    let thief = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            thief.serialize_der(),
        )))
        .unwrap();
    let cert = CertificateDer::from(victim.cert_der().to_vec());
    let resolver = SingleCertAndKey::from(CertifiedKey::new(vec![cert], key));
    let err = server_result(client_builder().with_client_cert_resolver(Arc::new(resolver)))
        .await
        .unwrap_err();
    let tls_err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            tls_err,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature
            ))
        ),
        "{err}"
    );
}
