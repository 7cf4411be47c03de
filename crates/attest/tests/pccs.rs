//! `PccsCollateral` against an in-process mock PCCS (axum on 127.0.0.1) that serves the real
//! Intel collateral of testdata/tdx (from dcap-qvl, MIT) split into the PCS v4 endpoints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use cocoon_attest::pccs::{fetch_collateral, pccs_responses, FetchOptions, PlatformKey};
use cocoon_attest::td_quote::TdQuote;
use cocoon_attest::tdx::{parse_collateral, verify_quote, Collateral};
use cocoon_attest::{AttestError, CollateralSource, PccsCollateral, Policy, TdxVerifier};

const V4: &[u8] = include_bytes!("../testdata/tdx/tdx_quote");
const V4_COLL: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_collateral.json");
const V4_AT: u64 = 1_750_332_747;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Normal,
    Status500,
    Oversized,
    MalformedTcb,
    NoIssuerHeader,
    GarbageCrl,
}

type Route = (Vec<(&'static str, String)>, Vec<u8>);

#[derive(Clone)]
struct Mock {
    routes: Arc<HashMap<String, Route>>,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
}

impl Mock {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn collateral() -> Collateral {
    parse_collateral(V4_COLL).unwrap()
}

fn key() -> PlatformKey {
    PlatformKey::of(&TdQuote::parse(V4).unwrap()).unwrap()
}

async fn serve(mock: Mock, uri: Uri) -> Response {
    mock.hits.fetch_add(1, Ordering::SeqCst);
    let mode = *mock.mode.lock().unwrap();
    let pq = uri.path_and_query().map_or("", |p| p.as_str()).to_string();
    let reply = |status: StatusCode, headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(Body::from(body)).unwrap()
    };
    let Some((headers, body)) = mock.routes.get(&pq).cloned() else {
        return reply(StatusCode::NOT_FOUND, vec![], b"no such endpoint".to_vec());
    };
    match mode {
        Mode::Normal => reply(StatusCode::OK, headers, body),
        Mode::Status500 => reply(StatusCode::INTERNAL_SERVER_ERROR, vec![], vec![]),
        Mode::Oversized => reply(StatusCode::OK, headers, vec![b'x'; 2 << 20]),
        Mode::MalformedTcb if pq.contains("/tcb?") => {
            reply(StatusCode::OK, headers, b"{\"tcbInfo\": [1, 2".to_vec())
        }
        Mode::NoIssuerHeader => reply(StatusCode::OK, vec![], body),
        Mode::GarbageCrl if pq.contains("pckcrl") => {
            reply(StatusCode::OK, headers, b"\x30\x03not a crl".to_vec())
        }
        _ => reply(StatusCode::OK, headers, body),
    }
}

fn mock_app() -> (axum::Router, Mock) {
    let routes = pccs_responses(&collateral(), &key())
        .into_iter()
        .map(|(p, h, b)| (p, (h, b)))
        .collect();
    let mock = Mock {
        routes: Arc::new(routes),
        mode: Arc::new(Mutex::new(Mode::Normal)),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let m = mock.clone();
    let app = axum::Router::new().fallback(move |uri: Uri| serve(m.clone(), uri));
    (app, mock)
}

/// Start the mock; returns its base URL.
async fn start_mock() -> (String, Mock) {
    let (app, mock) = mock_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), mock)
}

fn fast() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(5),
        attempts: 3,
        retry_delay: Duration::from_millis(10),
        backoff: Duration::from_secs(0),
        max_backoff: Duration::from_secs(0),
        extra_roots: Vec::new(),
    }
}

fn fixed_clock(secs: u64) -> cocoon_attest::pccs::Clock {
    Arc::new(move || secs)
}

fn quote() -> TdQuote {
    TdQuote::parse(V4).unwrap()
}

#[test]
fn platform_key_comes_from_the_pck_certificate() {
    let k = key();
    assert_eq!(k.fmspc.len(), 12);
    assert!(k.ca == "processor" || k.ca == "platform");
    // The served TCB info is for this FMSPC.
    assert!(collateral()
        .tcb_info
        .to_ascii_uppercase()
        .contains(&format!("\"FMSPC\":\"{}\"", k.fmspc)));
}

#[tokio::test]
async fn fetched_collateral_equals_the_file_and_verifies_the_quote() {
    cocoon_attest::ensure_crypto_provider();
    let (url, mock) = start_mock().await;
    // Also accept the base with a /certification/v4 suffix, as PCCS URLs are often written.
    for base in [url.clone(), format!("{url}/sgx/certification/v4/")] {
        let fetched = fetch_collateral(&base, &key(), &fast()).await.unwrap();
        let file = collateral();
        assert_eq!(
            serde_json::to_value(&fetched).unwrap(),
            serde_json::to_value(&file).unwrap()
        );
        let v = verify_quote(V4, &fetched, V4_AT).unwrap();
        assert_eq!(v.tcb_status, "UpToDate");
    }
    assert_eq!(mock.hits(), 8, "4 documents per fetch");
}

#[tokio::test]
async fn first_call_is_pending_then_served_from_cache() {
    cocoon_attest::ensure_crypto_provider();
    let (url, mock) = start_mock().await;
    let src = PccsCollateral::with_options(&url, fast(), fixed_clock(V4_AT)).unwrap();
    match src.collateral(&quote()) {
        Err(AttestError::CollateralPending {
            platform, url: u, ..
        }) => {
            assert!(platform.contains(&key().fmspc), "{platform}");
            assert_eq!(u, url);
        }
        other => panic!("expected pending, got {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        match src.collateral(&quote()) {
            Ok(c) => break c,
            Err(AttestError::CollateralPending { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(verify_quote(V4, &c, V4_AT).unwrap().tcb_status, "UpToDate");
    let hits = mock.hits();
    assert_eq!(hits, 4, "one fetch despite repeated calls");
    // Served from cache: no more requests.
    for _ in 0..5 {
        src.collateral(&quote()).unwrap();
    }
    assert_eq!(mock.hits(), hits);

    // Through the verifier and the policy path, as in a handshake.
    let policy = Policy {
        tdx: Some(Arc::new(TdxVerifier::new(Arc::new(src.clone())))),
        ..Policy::default()
    };
    let report =
        cocoon_attest::verify_quote(V4, &policy, UNIX_EPOCH + Duration::from_secs(V4_AT)).unwrap();
    assert_eq!(report.tcb_status.as_deref(), Some("UpToDate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cache_entry_is_refetched_not_served() {
    cocoon_attest::ensure_crypto_provider();
    let (url, mock) = start_mock().await;
    let now = Arc::new(AtomicUsize::new(V4_AT as usize));
    let n = now.clone();
    let clock: cocoon_attest::pccs::Clock = Arc::new(move || n.load(Ordering::SeqCst) as u64);
    let src = PccsCollateral::with_options(&url, fast(), clock).unwrap();
    src.fetch_blocking(&quote()).unwrap();
    assert_eq!(mock.hits(), 4);
    src.collateral(&quote()).unwrap();
    // Far past nextUpdate: the old copy is not served; a new fetch starts.
    now.store((V4_AT + 400 * 86400) as usize, Ordering::SeqCst);
    assert!(matches!(
        src.collateral(&quote()),
        Err(AttestError::CollateralPending { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_responses_are_clear_errors() {
    cocoon_attest::ensure_crypto_provider();
    let (url, mock) = start_mock().await;
    let cases = [
        (Mode::Status500, "HTTP 500"),
        (Mode::Oversized, "larger than"),
        (Mode::MalformedTcb, "JSON"),
        (Mode::NoIssuerHeader, "SGX-PCK-CRL-Issuer-Chain header"),
        (Mode::GarbageCrl, "unusable collateral"),
    ];
    for (mode, want) in cases {
        mock.set(mode);
        let before = mock.hits();
        let err = fetch_collateral(&url, &key(), &fast()).await.unwrap_err();
        assert!(matches!(err, AttestError::CollateralFetch(_)), "{err:?}");
        assert!(err.to_string().contains(want), "{want}: {err}");
        if mode == Mode::Status500 {
            assert_eq!(mock.hits() - before, 3, "5xx retried");
            assert!(err.to_string().contains("after 3 attempts"), "{err}");
        }
    }

    // Through the cache: pending, then the reason shows in the pending error.
    mock.set(Mode::Status500);
    let src = PccsCollateral::with_options(&url, fast(), fixed_clock(V4_AT)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match src.collateral(&quote()) {
            Err(AttestError::CollateralPending { last_error, .. })
                if last_error.contains("HTTP 500") =>
            {
                break
            }
            Err(AttestError::CollateralPending { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("{other:?}"),
        }
    }
    // fetch_blocking reports the failure directly.
    let err = src.fetch_blocking(&quote()).unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}

#[tokio::test]
async fn unreachable_or_invalid_urls_fail_cleanly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = fetch_collateral(&format!("http://{addr}"), &key(), &fast())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    // https is accepted (Intel's PCS directly).
    PccsCollateral::new(cocoon_attest::pccs::INTEL_PCS_URL).unwrap();
    PccsCollateral::new("https://pccs.local:8081/sgx/certification/v4/").unwrap();
    for bad in ["", "not a url", "ftp://example.com", "http://", "https://"] {
        assert!(PccsCollateral::new(bad).is_err(), "{bad:?}");
    }
}

/// Start the mock over TLS with a fresh self-signed certificate for 127.0.0.1 and localhost;
/// returns its `https://` base URL, the certificate (DER) and the mock.
async fn start_tls_mock() -> (String, Vec<u8>, Mock) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let der = cert.cert.der().to_vec();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let (app, mock) = mock_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // An untrusting client aborts the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tls),
                        hyper_util::service::TowerToHyperService::new(app),
                    )
                    .await;
            });
        }
    });
    (format!("https://{addr}"), der, mock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_over_https_from_a_pccs_with_a_private_ca() {
    let (url, cert, mock) = start_tls_mock().await;
    let opts = FetchOptions {
        extra_roots: vec![cert],
        ..fast()
    };
    let fetched = fetch_collateral(&url, &key(), &opts).await.unwrap();
    assert_eq!(
        serde_json::to_value(&fetched).unwrap(),
        serde_json::to_value(collateral()).unwrap()
    );
    assert_eq!(
        verify_quote(V4, &fetched, V4_AT).unwrap().tcb_status,
        "UpToDate"
    );
    assert_eq!(mock.hits(), 4);

    // Through the cache (its own thread and runtime), as configured by `tdx_collateral_url`.
    let src = PccsCollateral::with_options(&url, opts, fixed_clock(V4_AT)).unwrap();
    let c = src.fetch_blocking(&quote()).unwrap();
    assert_eq!(verify_quote(V4, &c, V4_AT).unwrap().tcb_status, "UpToDate");
}

#[tokio::test]
async fn untrusted_https_certificate_is_a_clear_error() {
    let (url, _cert, mock) = start_tls_mock().await;
    // Only the bundled public roots: the self-signed certificate is not trusted.
    let err = fetch_collateral(&url, &key(), &fast()).await.unwrap_err();
    assert!(matches!(err, AttestError::CollateralFetch(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    assert!(
        !msg.contains("attempts"),
        "a TLS failure is not retried: {msg}"
    );
    assert_eq!(mock.hits(), 0);

    // A different certificate as the extra root does not help either.
    let (_, other, _) = start_tls_mock().await;
    let opts = FetchOptions {
        extra_roots: vec![other],
        ..fast()
    };
    let err = fetch_collateral(&url, &key(), &opts).await.unwrap_err();
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );

    // A malformed extra root is refused up front, not ignored.
    let opts = FetchOptions {
        extra_roots: vec![b"not DER".to_vec()],
        ..fast()
    };
    let err = fetch_collateral(&url, &key(), &opts).await.unwrap_err();
    assert!(err.to_string().contains("extra root"), "{err}");
}
