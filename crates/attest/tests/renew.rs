//! Certificate renewal without dropping links: `Identity::renew` swaps the certificate that TLS
//! configs present; established connections keep working; new handshakes see the new one.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cocoon_attest::{
    keep_renewed, peer_identity, renewal_due, EvidenceKind, Identity, Measurements, Policy,
    PolicySource, TLS_SERVER_NAME,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(10);

fn policy() -> Arc<dyn PolicySource> {
    Arc::new(Policy::sim_with_images([
        Measurements::for_label("server").image_hash(),
        Measurements::for_label("client").image_hash(),
    ]))
}

/// Echo server: accepts connections forever, echoes every byte, and reports the client key it
/// saw on each accepted connection.
async fn echo_server(
    server: Arc<rustls::ServerConfig>,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<[u8; 32]>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (TlsAcceptor::from(server.clone()), tx.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(peer) = peer_identity(tls.get_ref().1) {
                    let _ = tx.send(peer.public_key);
                }
                let mut buf = [0u8; 64];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

type Conn = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(
    addr: std::net::SocketAddr,
    client: Arc<rustls::ClientConfig>,
) -> (Conn, [u8; 32]) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
    let tls = TlsConnector::from(client).connect(name, tcp).await.unwrap();
    let server_key = peer_identity(tls.get_ref().1).unwrap().public_key;
    (tls, server_key)
}

async fn ping(conn: &mut Conn, msg: &[u8]) {
    conn.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(T, conn.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, msg);
}

#[tokio::test]
async fn renew_swaps_the_certificate_without_dropping_links() {
    let server = Identity::generate(EvidenceKind::Sim, &Measurements::for_label("server")).unwrap();
    let client = Identity::generate(EvidenceKind::Sim, &Measurements::for_label("client")).unwrap();
    // Configs are built ONCE, before renewal: they must follow the identity.
    let (addr, mut seen_clients) = echo_server(server.server_config(policy()).unwrap()).await;
    let client_cfg = client.client_config(policy()).unwrap();

    let (old_server_key, old_client_key) = (server.public_key(), client.public_key());
    let old_cert = server.cert_der();
    let (mut first, key) = connect(addr, client_cfg.clone()).await;
    assert_eq!(key, old_server_key);
    assert_eq!(seen_clients.recv().await.unwrap(), old_client_key);
    ping(&mut first, b"before").await;

    server.renew().unwrap();
    client.renew().unwrap();
    assert_ne!(server.public_key(), old_server_key);
    assert_ne!(server.cert_der(), old_cert);
    assert!(server.expires_at() > SystemTime::now() + Duration::from_secs(23 * 3600));
    // Clones share the renewed certificate.
    assert_eq!(server.clone().public_key(), server.public_key());

    // The established link keeps working on the old keys.
    ping(&mut first, b"after renewal").await;
    // New handshakes present the new certificates, in both directions.
    let (mut second, key) = connect(addr, client_cfg).await;
    assert_eq!(key, server.public_key());
    assert_eq!(seen_clients.recv().await.unwrap(), client.public_key());
    ping(&mut second, b"new link").await;
    ping(&mut first, b"old link still up").await;
}

#[tokio::test]
async fn keep_renewed_schedules_at_80_percent_and_stops_on_shutdown() {
    let id = Identity::generate(EvidenceKind::None, &Measurements::for_label("x")).unwrap();
    let life = id.expires_at().duration_since(id.issued_at()).unwrap();
    let due = renewal_due(&id).duration_since(id.issued_at()).unwrap();
    let ratio = due.as_secs_f64() / life.as_secs_f64();
    assert!((ratio - 0.8).abs() < 0.001, "{ratio}");
    assert!(renewal_due(&id) < id.expires_at());

    let shutdown = CancellationToken::new();
    let task = tokio::spawn(keep_renewed(id.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished());
    shutdown.cancel();
    tokio::time::timeout(T, task).await.unwrap().unwrap();
}
