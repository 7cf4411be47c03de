//! The PCCS/PCS HTTP client: GET over http or https (hyper-util's legacy client on hyper-rustls,
//! an explicit ring provider, bundled Mozilla roots plus [`FetchOptions::extra_roots`]), with a
//! whole-request timeout, retries on network errors, 5xx and 429, and a bounded body.

use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

use super::{fetch_err, FetchOptions, MAX_RESPONSE_LEN};
use crate::AttestError;

/// One successful answer: headers and the body exactly as served.
pub(super) struct Response {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// A URL-encoded PEM chain from the first of `names` present.
    pub fn chain(&self, url: &str, names: &[&str]) -> Result<String, AttestError> {
        let value = names
            .iter()
            .find_map(|n| self.headers.get(*n))
            .ok_or_else(|| fetch_err(format!("{url}: no {} header", names.join(" / "))))?;
        let text = value
            .to_str()
            .map_err(|_| fetch_err(format!("{url}: {} header is not ASCII", names[0])))?;
        let pem = urlencoding::decode(text)
            .map_err(|e| fetch_err(format!("{url}: {} header: {e}", names[0])))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(fetch_err(format!(
                "{url}: {} header holds no PEM certificate",
                names[0]
            )));
        }
        Ok(pem.into_owned())
    }
}

/// Why one GET failed, and whether trying again may help.
struct GetError {
    msg: String,
    retry: bool,
}

/// GET client for one fetch (a few documents from one base URL).
pub(super) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    opts: FetchOptions,
}

impl HttpClient {
    pub fn new(opts: &FetchOptions) -> Result<Self, AttestError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for (i, der) in opts.extra_roots.iter().enumerate() {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| fetch_err(format!("HTTP client: extra root #{i}: {e}")))?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| fetch_err(format!("HTTP client: TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpClient {
            client,
            opts: opts.clone(),
        })
    }

    /// GET `url`, retried (with doubling delay) on network errors, 5xx and 429.
    pub async fn get(&self, url: &str) -> Result<Response, AttestError> {
        let opts = &self.opts;
        let mut delay = opts.retry_delay;
        let mut attempt = 1;
        loop {
            let once = match tokio::time::timeout(opts.timeout, self.get_once(url)).await {
                Ok(r) => r,
                Err(_) => Err(GetError {
                    msg: format!("{url}: timed out after {:?}", opts.timeout),
                    retry: true,
                }),
            };
            match once {
                Ok(r) => return Ok(r),
                Err(e) if !e.retry || attempt >= opts.attempts.max(1) => {
                    return Err(fetch_err(if attempt > 1 {
                        format!("{} (after {attempt} attempts)", e.msg)
                    } else {
                        e.msg
                    }))
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }

    async fn get_once(&self, url: &str) -> Result<Response, GetError> {
        let fail = |msg: String, retry: bool| GetError { msg, retry };
        let req = hyper::Request::get(url)
            .header(hyper::header::USER_AGENT, "cocoon-attest")
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(format!("{url}: {e}"), false))?;
        let resp = self.client.request(req).await.map_err(|e| {
            // A certificate the roots do not trust will not be trusted on the next attempt.
            fail(format!("{url}: {}", error_chain(&e)), !is_tls_error(&e))
        })?;
        let status = resp.status();
        if !status.is_success() {
            let retry = status.is_server_error() || status.as_u16() == 429;
            return Err(fail(format!("{url}: HTTP {status}"), retry));
        }
        let too_big = || {
            fail(
                format!("{url}: response larger than {MAX_RESPONSE_LEN} bytes"),
                false,
            )
        };
        let declared = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_RESPONSE_LEN as u64) {
            return Err(too_big());
        }
        let (parts, mut body) = resp.into_parts();
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| fail(format!("{url}: body: {}", error_chain(&e)), true))?;
            if let Ok(chunk) = frame.into_data() {
                if out.len() + chunk.len() > MAX_RESPONSE_LEN {
                    return Err(too_big());
                }
                out.extend_from_slice(&chunk);
            }
        }
        Ok(Response {
            headers: parts.headers,
            body: out,
        })
    }
}

/// Each error in `e`'s source chain, the `io::Error`s' inner errors included.
fn sources<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        out.push(err);
        // `io::Error::source` skips the error it wraps (a rustls error, say): visit it.
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    out
}

fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    sources(e)
        .iter()
        .any(|s| s.downcast_ref::<rustls::Error>().is_some())
}

/// An error with its sources (hyper's own message omits the cause: refused, timed out, TLS...).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    for s in sources(e) {
        let text = s.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
