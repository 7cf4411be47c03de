//! Mutual RA-TLS handshakes over TCP loopback with tokio-rustls.

use std::sync::Arc;
use std::time::Duration;

use cocoon_attest::{
    attest_error, peer_identity, pow, AttestError, EvidenceKind, Identity, Measurements,
    PeerIdentity, Policy, PolicySource, SharedPolicy, TLS_SERVER_NAME,
};
use rustls::pki_types::ServerName;
use rustls::{CipherSuite, HandshakeKind, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const T: Duration = Duration::from_secs(10);

/// What one side saw after a successful handshake.
#[derive(Debug)]
struct Seen {
    peer: PeerIdentity,
    version: Option<ProtocolVersion>,
    suite: Option<CipherSuite>,
    alpn: Option<Vec<u8>>,
    kind: Option<HandshakeKind>,
}

fn seen(conn: &rustls::CommonState) -> Seen {
    Seen {
        peer: peer_identity(conn).unwrap(),
        version: conn.protocol_version(),
        suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        kind: conn.handshake_kind(),
    }
}

type Side = Result<Seen, std::io::Error>;

/// Run one handshake plus a tiny exchange (so the client learns if the server refused its cert,
/// which in TLS 1.3 happens after the client's own handshake finished).
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> (Side, Side) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
        let s = seen(tls.get_ref().1);
        tls.write_all(b"ok").await?;
        tls.shutdown().await?;
        Ok(s)
    });
    let client_side = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
        let mut tls = TlsConnector::from(client).connect(name, tcp).await?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ok");
        Ok(seen(tls.get_ref().1))
    };
    let client_res = tokio::time::timeout(T, client_side)
        .await
        .expect("client timed out");
    let server_res = tokio::time::timeout(T, server_task)
        .await
        .expect("server timed out")
        .unwrap();
    (server_res, client_res)
}

fn attest_err(e: &std::io::Error) -> Option<&AttestError> {
    attest_error(e.get_ref()?.downcast_ref::<rustls::Error>()?)
}

fn sim(label: &str) -> Identity {
    Identity::generate(EvidenceKind::Sim, &Measurements::for_label(label)).unwrap()
}

fn configs(
    server: &Identity,
    server_policy: Arc<dyn PolicySource>,
    client: &Identity,
    client_policy: Arc<dyn PolicySource>,
) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    (
        server.server_config(server_policy).unwrap(),
        client.client_config(client_policy).unwrap(),
    )
}

fn only(id: &Identity) -> Arc<dyn PolicySource> {
    Arc::new(Policy::sim_with_images([id.image_hash().unwrap()]))
}

#[tokio::test]
async fn mutual_sim_handshake_succeeds() {
    let (proxy, worker) = (sim("proxy"), sim("worker"));
    let (s, c) = configs(&proxy, only(&worker), &worker, only(&proxy));
    let (srv, cli) = handshake(s, c).await;
    let (srv, cli) = (srv.unwrap(), cli.unwrap());
    assert_eq!(
        srv.peer,
        PeerIdentity {
            kind: EvidenceKind::Sim,
            public_key: worker.public_key(),
            image_hash: worker.image_hash(),
            measurements: Some(Measurements::for_label("worker")),
        }
    );
    assert_eq!(
        cli.peer,
        PeerIdentity {
            kind: EvidenceKind::Sim,
            public_key: proxy.public_key(),
            image_hash: proxy.image_hash(),
            measurements: Some(Measurements::for_label("proxy")),
        }
    );
    assert_ne!(proxy.image_hash(), worker.image_hash());
    for side in [&srv, &cli] {
        assert_eq!(side.version, Some(ProtocolVersion::TLSv1_3));
        assert!(matches!(
            side.suite,
            Some(CipherSuite::TLS13_AES_256_GCM_SHA384 | CipherSuite::TLS13_AES_128_GCM_SHA256)
        ));
        assert_eq!(side.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(side.kind, Some(HandshakeKind::Full));
    }
}

#[tokio::test]
async fn server_image_allowlist_enforced() {
    let (proxy, worker) = (sim("proxy"), sim("worker"));
    // Server only accepts its own image: the client's is refused.
    let (s, c) = configs(&proxy, only(&proxy), &worker, only(&proxy));
    let (srv, cli) = handshake(s, c).await;
    let err = srv.unwrap_err();
    assert!(
        matches!(
            attest_err(&err),
            Some(AttestError::ImageHashNotAllowed { .. })
        ),
        "{err}"
    );
    assert!(cli.is_err());
    // Same identities, allowlist with the client's hash: accepted.
    let (s, c) = configs(&proxy, only(&worker), &worker, only(&proxy));
    let (srv, cli) = handshake(s, c).await;
    srv.unwrap();
    cli.unwrap();
}

#[tokio::test]
async fn client_refuses_server_outside_allowlist() {
    let (proxy, client) = (sim("proxy"), sim("client"));
    let (s, c) = configs(&proxy, only(&client), &client, only(&client));
    let (srv, cli) = handshake(s, c).await;
    let err = cli.unwrap_err();
    assert!(
        matches!(
            attest_err(&err),
            Some(AttestError::ImageHashNotAllowed { .. })
        ),
        "{err}"
    );
    assert!(srv.is_err());
}

#[tokio::test]
async fn policy_source_is_read_on_every_handshake() {
    let (proxy, worker) = (sim("proxy"), sim("worker"));
    let shared = Arc::new(SharedPolicy::new(Policy::sim_with_images([])));
    let (s, c) = configs(&proxy, shared.clone(), &worker, only(&proxy));
    let (srv, _) = handshake(s.clone(), c.clone()).await;
    assert!(matches!(
        attest_err(&srv.unwrap_err()),
        Some(AttestError::ImageHashNotAllowed { .. })
    ));
    // Registry update: same configs, next connection is accepted.
    shared.set(Policy::sim_with_images([worker.image_hash().unwrap()]));
    let (srv, cli) = handshake(s.clone(), c.clone()).await;
    assert_eq!(srv.unwrap().peer.public_key, worker.public_key());
    cli.unwrap();
    // And revoked again.
    shared.set(Policy::sim_with_images([]));
    let (srv, _) = handshake(s, c).await;
    assert!(srv.is_err());
}

#[tokio::test]
async fn foreign_bindings_refused_both_directions() {
    let honest = sim("honest");
    let m = Measurements::for_label("liar");
    for (kind, expect) in [
        (
            EvidenceKind::Sim,
            (|e| matches!(e, AttestError::ReportDataMismatch)) as fn(&AttestError) -> bool,
        ),
        (EvidenceKind::None, |e| {
            matches!(e, AttestError::KeyBindingMismatch { .. })
        }),
    ] {
        let liar = Identity::generate_with_foreign_binding(kind, &m).unwrap();
        let all: Arc<dyn PolicySource> = Arc::new(Policy::allow_all());
        // Liar as client.
        let (s, c) = configs(&honest, all.clone(), &liar, all.clone());
        let (srv, _) = handshake(s, c).await;
        let err = srv.unwrap_err();
        assert!(attest_err(&err).is_some_and(expect), "{kind} client: {err}");
        // Liar as server.
        let (s, c) = configs(&liar, all.clone(), &honest, all);
        let (_, cli) = handshake(s, c).await;
        let err = cli.unwrap_err();
        assert!(attest_err(&err).is_some_and(expect), "{kind} server: {err}");
    }
}

#[tokio::test]
async fn evidence_kinds_gated_by_policy() {
    let none_id = Identity::generate(EvidenceKind::None, &Measurements::for_label("n")).unwrap();
    let sim_id = sim("s");
    let all: Arc<dyn PolicySource> = Arc::new(Policy::allow_all());
    let no_sim: Arc<dyn PolicySource> = Arc::new(Policy {
        allow_sim: false,
        ..Policy::allow_all()
    });
    let no_none: Arc<dyn PolicySource> = Arc::new(Policy {
        allow_none: false,
        ..Policy::allow_all()
    });

    let (s, c) = configs(&none_id, no_sim, &sim_id, all.clone());
    let err = handshake(s, c).await.0.unwrap_err();
    assert!(matches!(
        attest_err(&err),
        Some(AttestError::EvidenceKindNotAllowed {
            kind: EvidenceKind::Sim
        })
    ));
    let (s, c) = configs(&sim_id, no_none, &none_id, all.clone());
    let err = handshake(s, c).await.0.unwrap_err();
    assert!(matches!(
        attest_err(&err),
        Some(AttestError::EvidenceKindNotAllowed {
            kind: EvidenceKind::None
        })
    ));
    // With both allowed, `none` on both sides works and reports no image hash.
    let (s, c) = configs(&none_id, all.clone(), &none_id, all);
    let (srv, cli) = handshake(s, c).await;
    let (srv, cli) = (srv.unwrap(), cli.unwrap());
    assert_eq!(srv.peer.kind, EvidenceKind::None);
    assert_eq!(srv.peer.image_hash, None);
    assert_eq!(cli.peer.public_key, none_id.public_key());
}

#[tokio::test]
async fn no_resumption_across_connections() {
    let (a, b) = (sim("a"), sim("b"));
    let all: Arc<dyn PolicySource> = Arc::new(Policy::allow_all());
    let (s, c) = configs(&a, all.clone(), &b, all);
    for _ in 0..2 {
        let (srv, cli) = handshake(s.clone(), c.clone()).await;
        assert_eq!(srv.unwrap().kind, Some(HandshakeKind::Full));
        assert_eq!(cli.unwrap().kind, Some(HandshakeKind::Full));
    }
}

#[tokio::test]
async fn pow_then_tls_on_one_tcp_stream() {
    let (a, b) = (sim("a"), sim("b"));
    let all: Arc<dyn PolicySource> = Arc::new(Policy::allow_all());
    let (s, c) = configs(&a, all.clone(), &b, all);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        pow::challenge(&mut tcp, 8, T).await.unwrap();
        let tls = TlsAcceptor::from(s).accept(tcp).await.unwrap();
        peer_identity(tls.get_ref().1).unwrap()
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    pow::solve(&mut tcp, pow::CLIENT_MAX_DIFFICULTY, T)
        .await
        .unwrap();
    let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
    let tls = TlsConnector::from(c).connect(name, tcp).await.unwrap();
    assert_eq!(
        peer_identity(tls.get_ref().1).unwrap().public_key,
        a.public_key()
    );
    assert_eq!(server.await.unwrap().public_key, b.public_key());
}
