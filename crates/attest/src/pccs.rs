//! DCAP collateral fetched from a PCCS or Intel's PCS (v4 API), for online verification.
//!
//! [`PccsCollateral`] is a [`CollateralSource`]: the TLS verifiers call it synchronously in the
//! middle of a handshake, so it never touches the network there. Collateral is cached per
//! platform family (FMSPC, PCK CA) until its validity window ends; a miss starts one background
//! fetch (its own thread and runtime, so it works from inside or outside tokio) and fails the
//! handshake at once with [`AttestError::CollateralPending`] — the peer redials with backoff and
//! succeeds once the collateral is in. Cached collateral is refreshed in the background
//! [`REFRESH_EVERY_SECS`] after it was fetched and within [`REFRESH_AHEAD_SECS`] of its expiry,
//! while the old copy keeps serving. Failed fetches are retried (a few attempts per fetch, then
//! exponential backoff between fetches). `http://` and `https://` (server certificates checked
//! against the bundled Mozilla roots plus [`FetchOptions::extra_roots`]);
//! responses are bounded to [`MAX_RESPONSE_LEN`] bytes and every malformed answer is an error,
//! never a panic.
//!
//! Endpoints (as dcap-qvl's `collateral` module, for a TDX quote; `base` may be a PCS or PCCS
//! root, with or without the `/{sgx,tdx}/certification/v4` suffix):
//!
//! | what | GET | issuer chain header |
//! |---|---|---|
//! | PCK CRL (DER) | `{base}/sgx/certification/v4/pckcrl?ca={processor,platform}&encoding=der` | `SGX-PCK-CRL-Issuer-Chain` |
//! | TCB info | `{base}/tdx/certification/v4/tcb?fmspc={FMSPC}` | `TCB-Info-Issuer-Chain` (or `SGX-TCB-Info-Issuer-Chain`) |
//! | QE identity | `{base}/tdx/certification/v4/qe/identity` | `SGX-Enclave-Identity-Issuer-Chain` |
//! | root CA CRL | PCCS: `{base}/sgx/certification/v4/rootcacrl` (hex or DER); PCS: [`INTEL_ROOT_CA_CRL_URL`] | — |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod http_client;

use self::http_client::HttpClient;
use crate::td_quote::TdQuote;
use crate::tdx::{collateral_window, Collateral, CollateralSource};
use crate::AttestError;

/// Intel's PCS.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com";
/// CRL distribution point of Intel's SGX root CA (the pinned root): where the root CA CRL comes
/// from when the base URL is Intel's PCS (which has no `rootcacrl` endpoint).
pub const INTEL_ROOT_CA_CRL_URL: &str =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
/// Largest response body accepted from the PCCS/PCS.
pub const MAX_RESPONSE_LEN: usize = 1 << 20;
/// Refresh cached collateral in the background this long after it was fetched...
pub const REFRESH_EVERY_SECS: u64 = 12 * 3600;
/// ...or when it is this close to the end of its validity window.
pub const REFRESH_AHEAD_SECS: u64 = 24 * 3600;
const MAX_ENTRIES: usize = 256;

/// Tunables of the HTTP side (tests shorten them).
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Whole-request timeout (connect included).
    pub timeout: Duration,
    /// Attempts per fetch of one document (network errors, 5xx and 429 are retried).
    pub attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub retry_delay: Duration,
    /// After a failed fetch, no new one for this long (doubled per failure, capped at
    /// [`FetchOptions::max_backoff`]).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Extra trusted roots (DER) for https, beside the bundled Mozilla roots: a private PCCS's CA.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(30),
            attempts: 3,
            retry_delay: Duration::from_millis(500),
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            extra_roots: Vec::new(),
        }
    }
}

/// Platform family a quote's collateral belongs to: FMSPC (upper-case hex) and PCK CA
/// (`processor` or `platform`), both from the quote's PCK leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PlatformKey {
    pub fmspc: String,
    pub ca: &'static str,
}

impl PlatformKey {
    pub fn of(quote: &TdQuote) -> Result<Self, AttestError> {
        let leaf = quote
            .pck_chain
            .first()
            .ok_or_else(|| AttestError::quote("no PCK certificate in the quote"))?;
        let ext = dcap_qvl::intel::parse_pck_extension(leaf)
            .map_err(|e| AttestError::BadCertChain(format!("PCK SGX extension: {e:#}")))?;
        let ca = dcap_qvl::intel::pck_ca(leaf)
            .map_err(|e| AttestError::BadCertChain(format!("PCK issuer: {e:#}")))?;
        Ok(PlatformKey {
            fmspc: hex::encode_upper(ext.fmspc),
            ca: ca.as_id_str(),
        })
    }
}

impl std::fmt::Display for PlatformKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FMSPC {} ({} CA)", self.fmspc, self.ca)
    }
}

fn fetch_err(msg: impl Into<String>) -> AttestError {
    AttestError::CollateralFetch(msg.into())
}

/// The URL layout of a PCS/PCCS base.
#[derive(Clone, Debug)]
struct Endpoints {
    base: String,
}

impl Endpoints {
    fn new(base_url: &str) -> Result<Self, AttestError> {
        let base = base_url
            .trim()
            .trim_end_matches('/')
            .trim_end_matches("/sgx/certification/v4")
            .trim_end_matches("/tdx/certification/v4")
            .trim_end_matches('/')
            .to_string();
        let parsed: hyper::Uri = base
            .parse()
            .map_err(|e| fetch_err(format!("PCCS URL {base_url:?}: {e}")))?;
        let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
        if !scheme_ok || parsed.host().is_none_or(str::is_empty) {
            return Err(fetch_err(format!(
                "PCCS URL {base_url:?}: expected http[s]://host[:port][/path]"
            )));
        }
        Ok(Endpoints { base })
    }

    fn is_intel_pcs(&self) -> bool {
        self.base.starts_with(INTEL_PCS_URL)
    }

    fn pck_crl(&self, ca: &str) -> String {
        format!(
            "{}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der",
            self.base
        )
    }

    fn tcb(&self, fmspc: &str) -> String {
        format!("{}/tdx/certification/v4/tcb?fmspc={fmspc}", self.base)
    }

    fn qe_identity(&self) -> String {
        format!("{}/tdx/certification/v4/qe/identity", self.base)
    }

    fn root_ca_crl(&self) -> String {
        format!("{}/sgx/certification/v4/rootcacrl", self.base)
    }
}

/// `{"<field>": {...}, "signature": "<hex>"}` → (the signed JSON exactly as served, signature).
fn signed_json(url: &str, body: &[u8], field: &str) -> Result<(String, Vec<u8>), AttestError> {
    #[derive(serde::Deserialize)]
    struct Signed<'a> {
        #[serde(borrow, rename = "tcbInfo")]
        tcb_info: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, rename = "enclaveIdentity")]
        enclave_identity: Option<&'a serde_json::value::RawValue>,
        signature: String,
    }
    let s: Signed<'_> =
        serde_json::from_slice(body).map_err(|e| fetch_err(format!("{url}: JSON: {e}")))?;
    let raw = match field {
        "tcbInfo" => s.tcb_info,
        _ => s.enclave_identity,
    }
    .ok_or_else(|| fetch_err(format!("{url}: no `{field}` in the response")))?;
    let signature =
        hex::decode(&s.signature).map_err(|e| fetch_err(format!("{url}: signature: {e}")))?;
    Ok((raw.get().to_string(), signature))
}

/// Fetch the collateral of one platform family from `base_url` (PCS or PCCS), validated: every
/// piece parses and the validity window is not empty. Signatures are checked by DCAP at
/// verification time, against the pinned Intel root.
pub async fn fetch_collateral(
    base_url: &str,
    key: &PlatformKey,
    opts: &FetchOptions,
) -> Result<Collateral, AttestError> {
    let ep = Endpoints::new(base_url)?;
    if key.fmspc.len() != 12 || !key.fmspc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(fetch_err(format!("bad FMSPC {:?}", key.fmspc)));
    }
    let client = HttpClient::new(opts)?;

    let url = ep.pck_crl(key.ca);
    let r = client.get(&url).await?;
    let pck_crl_issuer_chain = r.chain(&url, &["SGX-PCK-CRL-Issuer-Chain"])?;
    let pck_crl = r.body;

    let url = ep.tcb(&key.fmspc);
    let r = client.get(&url).await?;
    let tcb_info_issuer_chain = r.chain(
        &url,
        &["TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"],
    )?;
    let (tcb_info, tcb_info_signature) = signed_json(&url, &r.body, "tcbInfo")?;

    let url = ep.qe_identity();
    let r = client.get(&url).await?;
    let qe_identity_issuer_chain = r.chain(&url, &["SGX-Enclave-Identity-Issuer-Chain"])?;
    let (qe_identity, qe_identity_signature) = signed_json(&url, &r.body, "enclaveIdentity")?;

    let root_ca_crl = if ep.is_intel_pcs() {
        client.get(INTEL_ROOT_CA_CRL_URL).await?.body
    } else {
        // PCCS serves the root CA CRL hex-encoded; accept raw DER as well.
        let url = ep.root_ca_crl();
        let body = client.get(&url).await?.body;
        if body.first() == Some(&0x30) {
            body
        } else {
            let text = std::str::from_utf8(&body)
                .map_err(|_| fetch_err(format!("{url}: neither DER nor hex")))?;
            hex::decode(text.trim())
                .map_err(|e| fetch_err(format!("{url}: neither DER nor hex: {e}")))?
        }
    };

    let collateral = Collateral {
        pck_crl_issuer_chain,
        root_ca_crl,
        pck_crl,
        tcb_info_issuer_chain,
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    };
    collateral_window(&collateral)
        .map_err(|e| fetch_err(format!("{base_url} served unusable collateral: {e}")))?;
    Ok(collateral)
}

/// Run `fetch_collateral` to completion on a fresh thread with its own runtime (callable from
/// anywhere, inside a tokio runtime or not).
fn fetch_on_thread(
    base_url: String,
    key: PlatformKey,
    opts: FetchOptions,
) -> std::io::Result<std::thread::JoinHandle<Result<Collateral, AttestError>>> {
    std::thread::Builder::new()
        .name("pccs-fetch".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fetch_err(format!("runtime: {e}")))?;
            rt.block_on(fetch_collateral(&base_url, &key, &opts))
        })
}

/// Seconds since the UNIX epoch, as the cache sees them (injectable for tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Default)]
struct Entry {
    /// (collateral, window end, fetched at).
    current: Option<(Arc<Collateral>, u64, u64)>,
    fetching: bool,
    failures: u32,
    /// No new fetch before this second (backoff after failures).
    retry_at: u64,
    last_error: Option<String>,
}

struct Inner {
    endpoints: Endpoints,
    base_url: String,
    opts: FetchOptions,
    clock: Clock,
    entries: Mutex<HashMap<PlatformKey, Entry>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PlatformKey, Entry>> {
        // Plain values; a panicking writer cannot leave an entry half-updated.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store(&self, key: &PlatformKey, result: Result<Collateral, AttestError>) {
        let now = (self.clock)();
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.retain(|_, e| e.fetching || e.current.as_ref().is_some_and(|c| c.1 >= now));
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        let entry = entries.entry(key.clone()).or_default();
        entry.fetching = false;
        match result.and_then(|c| Ok((collateral_window(&c)?.1, c))) {
            Ok((not_after, c)) => {
                tracing::info!(platform = %key, not_after, "DCAP collateral fetched");
                entry.current = Some((Arc::new(c), not_after, now));
                entry.failures = 0;
                entry.retry_at = 0;
                entry.last_error = None;
            }
            Err(e) => {
                tracing::warn!(platform = %key, error = %e, "DCAP collateral fetch failed");
                let exp = entry.failures.min(16);
                let backoff = self
                    .opts
                    .backoff
                    .saturating_mul(1u32 << exp)
                    .min(self.opts.max_backoff);
                entry.failures = entry.failures.saturating_add(1);
                entry.retry_at = now.saturating_add(backoff.as_secs());
                entry.last_error = Some(e.to_string());
            }
        }
    }
}

/// DCAP collateral from a PCCS/PCS URL, cached per platform family; never blocks the caller
/// (see the module docs).
#[derive(Clone)]
pub struct PccsCollateral {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PccsCollateral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PccsCollateral")
            .field("url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl PccsCollateral {
    /// A source for `base_url` (e.g. [`INTEL_PCS_URL`] or `https://pccs.local:8081`).
    pub fn new(base_url: &str) -> Result<Self, AttestError> {
        Self::with_options(base_url, FetchOptions::default(), Arc::new(wall_clock))
    }

    /// A source with explicit HTTP tunables and clock (the clock decides expiry and refresh).
    pub fn with_options(
        base_url: &str,
        opts: FetchOptions,
        clock: Clock,
    ) -> Result<Self, AttestError> {
        Ok(PccsCollateral {
            inner: Arc::new(Inner {
                endpoints: Endpoints::new(base_url)?,
                base_url: base_url.to_string(),
                opts,
                clock,
                entries: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn url(&self) -> &str {
        &self.inner.base_url
    }

    /// Fetch now and wait for the answer (CLI, start-up warm-up). Fills the cache. Blocks the
    /// calling thread (the fetch runs on its own thread and runtime), so never call it from an
    /// async task on a single-threaded runtime that also drives the server it fetches from.
    pub fn fetch_blocking(&self, quote: &TdQuote) -> Result<Arc<Collateral>, AttestError> {
        let key = PlatformKey::of(quote)?;
        let handle = fetch_on_thread(
            self.inner.endpoints.base.clone(),
            key.clone(),
            self.inner.opts.clone(),
        )
        .map_err(|e| fetch_err(format!("cannot start fetch thread: {e}")))?;
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(fetch_err("fetch thread panicked")));
        let out = match &result {
            Ok(c) => Ok(Arc::new(c.clone())),
            Err(AttestError::CollateralFetch(m)) => Err(fetch_err(m.clone())),
            Err(e) => Err(fetch_err(e.to_string())),
        };
        self.inner.store(&key, result);
        out
    }

    /// Start a background fetch for `key` unless one is running or backing off.
    fn spawn_fetch(&self, key: &PlatformKey, entry: &mut Entry, now: u64) {
        if entry.fetching || now < entry.retry_at {
            return;
        }
        let inner = self.inner.clone();
        let k = key.clone();
        let base = inner.endpoints.base.clone();
        let opts = inner.opts.clone();
        let spawned = std::thread::Builder::new()
            .name("pccs-refresh".into())
            .spawn(move || {
                let result = match fetch_on_thread(base, k.clone(), opts) {
                    Ok(h) => h
                        .join()
                        .unwrap_or_else(|_| Err(fetch_err("fetch thread panicked"))),
                    Err(e) => Err(fetch_err(format!("cannot start fetch thread: {e}"))),
                };
                inner.store(&k, result);
            });
        match spawned {
            Ok(_) => entry.fetching = true,
            Err(e) => entry.last_error = Some(format!("cannot start fetch thread: {e}")),
        }
    }
}

impl CollateralSource for PccsCollateral {
    fn collateral(&self, quote: &TdQuote) -> Result<Arc<Collateral>, AttestError> {
        let key = PlatformKey::of(quote)?;
        let now = (self.inner.clock)();
        let mut entries = self.inner.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.fetching || e.current.as_ref().is_some_and(|c| c.1 >= now));
            if entries.len() >= MAX_ENTRIES {
                return Err(fetch_err(
                    "too many platform families in the collateral cache",
                ));
            }
        }
        let entry = entries.entry(key.clone()).or_default();
        if let Some((c, not_after, fetched_at)) = entry.current.clone() {
            if now <= not_after {
                let stale = now >= fetched_at.saturating_add(REFRESH_EVERY_SECS)
                    || now.saturating_add(REFRESH_AHEAD_SECS) >= not_after;
                if stale {
                    self.spawn_fetch(&key, entry, now);
                }
                return Ok(c);
            }
        }
        self.spawn_fetch(&key, entry, now);
        Err(AttestError::CollateralPending {
            platform: key.to_string(),
            url: self.inner.base_url.clone(),
            last_error: entry
                .last_error
                .clone()
                .unwrap_or_else(|| "none yet".into()),
        })
    }
}

/// (path and query, response headers, body) of one mock PCCS endpoint.
#[doc(hidden)]
pub type MockResponse = (String, Vec<(&'static str, String)>, Vec<u8>);

/// What a PCCS serves for `collateral` — (path and query, response headers, body) for the PCK
/// CRL, TCB info, QE identity and root CA CRL — for mock servers in tests.
#[doc(hidden)]
pub fn pccs_responses(collateral: &Collateral, key: &PlatformKey) -> Vec<MockResponse> {
    let enc = |s: &str| urlencoding::encode(s).into_owned();
    vec![
        (
            format!("/sgx/certification/v4/pckcrl?ca={}&encoding=der", key.ca),
            vec![(
                "SGX-PCK-CRL-Issuer-Chain",
                enc(&collateral.pck_crl_issuer_chain),
            )],
            collateral.pck_crl.clone(),
        ),
        (
            format!("/tdx/certification/v4/tcb?fmspc={}", key.fmspc),
            vec![(
                "TCB-Info-Issuer-Chain",
                enc(&collateral.tcb_info_issuer_chain),
            )],
            format!(
                "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                collateral.tcb_info,
                hex::encode(&collateral.tcb_info_signature)
            )
            .into_bytes(),
        ),
        (
            "/tdx/certification/v4/qe/identity".to_string(),
            vec![(
                "SGX-Enclave-Identity-Issuer-Chain",
                enc(&collateral.qe_identity_issuer_chain),
            )],
            format!(
                "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                collateral.qe_identity,
                hex::encode(&collateral.qe_identity_signature)
            )
            .into_bytes(),
        ),
        (
            "/sgx/certification/v4/rootcacrl".to_string(),
            Vec::new(),
            hex::encode(&collateral.root_ca_crl).into_bytes(),
        ),
    ]
}
