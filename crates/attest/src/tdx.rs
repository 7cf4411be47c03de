//! `tdx` evidence verification: real Intel TDX quotes checked with dcap-qvl against Intel's
//! root CA and DCAP collateral (PCK CRL, root CA CRL, TCB info, QE identity).
//!
//! A TLS peer cannot hand us trustworthy collateral, so the verifying side holds a
//! [`CollateralSource`] (today: [`FileCollateral`], for offline verification; a PCCS/PCS client
//! is not built into this crate — it would pull an HTTP stack — and can be added as another
//! `CollateralSource`). [`TdxVerifier`] caches successful verifications by quote hash, each for
//! at most [`CACHE_TTL_SECS`] and never past the end of the collateral's validity window.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dcap_qvl::configs::RingConfig;
use dcap_qvl::verify::QuoteVerifier;
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::td_quote::TdQuote;
use crate::AttestError;

pub use dcap_qvl::QuoteCollateralV3 as Collateral;

/// Intel SGX/TDX root CA (DER), the only root real quotes may chain to.
pub const INTEL_ROOT_CA_DER: &[u8] = include_bytes!("intel_sgx_root_ca.der");
/// The TCB status every policy accepts; others only when listed in the policy.
pub const TCB_UP_TO_DATE: &str = "UpToDate";
/// Longest time a successful verification is reused without re-running DCAP.
pub const CACHE_TTL_SECS: u64 = 3600;
const CACHE_MAX_ENTRIES: usize = 4096;
const MAX_COLLATERAL_LEN: u64 = 1 << 20;

/// Root key id of Intel's root CA: SHA-256 of its SubjectPublicKeyInfo.
pub fn intel_root_id() -> Result<[u8; 32], AttestError> {
    crate::chain::key_id(INTEL_ROOT_CA_DER)
}

/// A real quote that passed DCAP verification (signatures, certificate chain to Intel's root,
/// CRLs, TCB info and QE identity at the given time). The TCB status is NOT yet judged.
#[derive(Clone, Debug)]
pub struct TdxVerified {
    pub quote: TdQuote,
    /// DCAP TCB status (`UpToDate`, `SWHardeningNeeded`, `OutOfDate`, ...).
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
    /// Validity window of the collateral used, UNIX seconds.
    pub collateral_not_before: u64,
    pub collateral_not_after: u64,
}

impl TdxVerified {
    /// Accept `UpToDate`, plus any status listed in `extra`.
    pub fn check_tcb_status(&self, extra: &BTreeSet<String>) -> Result<(), AttestError> {
        if self.tcb_status == TCB_UP_TO_DATE || extra.contains(&self.tcb_status) {
            Ok(())
        } else {
            Err(AttestError::TcbStatusNotAllowed {
                status: self.tcb_status.clone(),
                advisories: self.advisory_ids.join(","),
            })
        }
    }
}

/// Parse collateral JSON (dcap-qvl's `QuoteCollateralV3` format, as in `testdata/tdx/`).
pub fn parse_collateral(json: &[u8]) -> Result<Collateral, AttestError> {
    serde_json::from_slice(json).map_err(|e| AttestError::BadCollateral(format!("JSON: {e}")))
}

/// `[not_before, not_after]` (UNIX seconds) in which every piece of the collateral is current:
/// latest issue date / CRL thisUpdate to earliest nextUpdate.
pub fn collateral_window(c: &Collateral) -> Result<(u64, u64), AttestError> {
    let mut lo = 0u64;
    let mut hi = u64::MAX;
    for (what, json) in [("TCB info", &c.tcb_info), ("QE identity", &c.qe_identity)] {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Dates {
            issue_date: String,
            next_update: String,
        }
        let d: Dates = serde_json::from_str(json)
            .map_err(|e| AttestError::BadCollateral(format!("{what}: {e}")))?;
        lo = lo.max(rfc3339(&d.issue_date)?);
        hi = hi.min(rfc3339(&d.next_update)?);
    }
    for (what, der) in [("root CA CRL", &c.root_ca_crl), ("PCK CRL", &c.pck_crl)] {
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| AttestError::BadCollateral(format!("{what}: {e}")))?;
        lo = lo.max(u64::try_from(crl.last_update().timestamp()).unwrap_or(0));
        if let Some(next) = crl.next_update() {
            hi = hi.min(u64::try_from(next.timestamp()).unwrap_or(0));
        }
    }
    if lo > hi {
        return Err(AttestError::BadCollateral("empty validity window".into()));
    }
    Ok((lo, hi))
}

fn rfc3339(s: &str) -> Result<u64, AttestError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| AttestError::BadCollateral(format!("date {s:?}: {e}")))?;
    u64::try_from(t.unix_timestamp())
        .map_err(|_| AttestError::BadCollateral(format!("date {s:?} before 1970")))
}

/// Verify a real TDX quote (v4 or v5) offline against `collateral` at `now_secs`.
pub fn verify_quote(
    raw: &[u8],
    collateral: &Collateral,
    now_secs: u64,
) -> Result<TdxVerified, AttestError> {
    let quote = TdQuote::parse(raw)?;
    // The PCK chain in the quote, strictly, up to Intel's root (dcap-qvl checks the leaf and may
    // take intermediates from the collateral; we also refuse a quote whose own copy is altered).
    let chain: Vec<&[u8]> = quote.pck_chain.iter().map(Vec::as_slice).collect();
    let root = crate::chain::verify_chain(&chain, now_secs)?;
    if root != intel_root_id()? {
        return Err(AttestError::UntrustedRoot {
            id: hex::encode(root),
        });
    }
    let (not_before, not_after) = collateral_window(collateral)?;
    if now_secs < not_before {
        return Err(AttestError::CollateralNotYetValid {
            not_before,
            now: now_secs,
        });
    }
    if now_secs > not_after {
        return Err(AttestError::CollateralExpired {
            not_after,
            now: now_secs,
        });
    }
    let report = QuoteVerifier::new(INTEL_ROOT_CA_DER.to_vec())
        .with_config::<RingConfig>()
        .verify(raw, collateral, now_secs)
        .map_err(|e| classify(&format!("{e:#}")))?;
    // dcap-qvl and our parser must agree on what was verified.
    let same = report.report.as_td10().is_some_and(|td| {
        td.mr_td == quote.body.mrtd
            && td.report_data == quote.body.report_data
            && [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3] == quote.body.rtmr
    });
    if !same {
        return Err(AttestError::quote(
            "verified report differs from parsed body",
        ));
    }
    Ok(TdxVerified {
        quote,
        tcb_status: report.status,
        advisory_ids: report.advisory_ids,
        collateral_not_before: not_before,
        collateral_not_after: not_after,
    })
}

/// Map dcap-qvl's error chain to a precise [`AttestError`].
fn classify(msg: &str) -> AttestError {
    let has = |s: &str| msg.contains(s);
    if has("No matching TCB level") {
        AttestError::TcbLevelNotFound
    } else if has("ISV enclave report signature is invalid") {
        AttestError::BadSignature
    } else if has("expired") || has("Expired") {
        AttestError::CollateralRejected(msg.to_string())
    } else if has("Debug mode is enabled") {
        AttestError::DebugTd
    } else if has("decode quote") || has("quote version") || has("attestation key type") {
        AttestError::BadQuote(msg.to_string())
    } else {
        AttestError::DcapVerification(msg.to_string())
    }
}

/// Where a verifier gets DCAP collateral for a quote.
pub trait CollateralSource: Send + Sync + std::fmt::Debug {
    fn collateral(&self, quote: &TdQuote) -> Result<Arc<Collateral>, AttestError>;
}

/// Collateral read once from a JSON file (offline verification; refresh by restarting or
/// building a new verifier). Serves the same collateral for every quote: right for one platform
/// family (FMSPC); dcap-qvl refuses a quote from another platform with an FMSPC mismatch.
#[derive(Debug)]
pub struct FileCollateral {
    pub path: PathBuf,
    collateral: Arc<Collateral>,
}

impl FileCollateral {
    pub fn load(path: &Path) -> Result<Self, AttestError> {
        let collateral = Arc::new(parse_collateral(&read_bounded(path)?)?);
        Ok(FileCollateral {
            path: path.to_path_buf(),
            collateral,
        })
    }

    /// A source serving collateral already in memory.
    pub fn from_collateral(collateral: Collateral) -> Self {
        FileCollateral {
            path: PathBuf::new(),
            collateral: Arc::new(collateral),
        }
    }
}

impl CollateralSource for FileCollateral {
    fn collateral(&self, _quote: &TdQuote) -> Result<Arc<Collateral>, AttestError> {
        Ok(self.collateral.clone())
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, AttestError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| AttestError::BadCollateral(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    file.take(MAX_COLLATERAL_LEN + 1)
        .read_to_end(&mut out)
        .map_err(|e| AttestError::BadCollateral(format!("{}: {e}", path.display())))?;
    if out.len() as u64 > MAX_COLLATERAL_LEN {
        return Err(AttestError::BadCollateral(format!(
            "{}: larger than {MAX_COLLATERAL_LEN} bytes",
            path.display()
        )));
    }
    Ok(out)
}

/// Quote hash → (verification, reusable until this UNIX second).
type Cache = HashMap<[u8; 32], (Arc<TdxVerified>, u64)>;

/// DCAP verification with a collateral source and a cache keyed by SHA-256 of the quote. Only
/// successes are cached; an entry lives at most [`CACHE_TTL_SECS`] and never past the end of
/// the collateral window it was verified under.
#[derive(Debug)]
pub struct TdxVerifier {
    source: Arc<dyn CollateralSource>,
    cache: Mutex<Cache>,
}

impl TdxVerifier {
    pub fn new(source: Arc<dyn CollateralSource>) -> Self {
        TdxVerifier {
            source,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Verify (or reuse a cached verification of) `raw` at `now_secs`.
    pub fn verify(&self, raw: &[u8], now_secs: u64) -> Result<Arc<TdxVerified>, AttestError> {
        let key: [u8; 32] = Sha256::digest(raw).into();
        if let Some((hit, until)) = self.lock().get(&key) {
            if now_secs <= *until && now_secs >= hit.collateral_not_before {
                return Ok(hit.clone());
            }
        }
        let quote = TdQuote::parse(raw)?;
        let collateral = self.source.collateral(&quote)?;
        let verified = Arc::new(verify_quote(raw, &collateral, now_secs)?);
        let until = verified
            .collateral_not_after
            .min(now_secs.saturating_add(CACHE_TTL_SECS));
        let mut cache = self.lock();
        if cache.len() >= CACHE_MAX_ENTRIES {
            cache.retain(|_, (_, u)| *u >= now_secs);
            if cache.len() >= CACHE_MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (verified.clone(), until));
        Ok(verified)
    }

    /// Number of cached verifications (tests, metrics).
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The map holds plain values; a panicking writer cannot leave it half-updated.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
