//! Verification of a peer's RA-TLS certificate: X.509 shape, self-signature, validity, critical
//! extensions, evidence, key binding, then policy. Used by the rustls verifiers (tls.rs) and by
//! anyone holding a certificate (e.g. `cocoon` CLI checks).

use std::time::{SystemTime, UNIX_EPOCH};

use rustls::CommonState;
use x509_parser::oid_registry::{Oid, OID_SIG_ED25519};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::claims::{report_data, Claims};
use crate::quote::TdReport10;
use crate::td_quote::TdQuote;
use crate::{sim, tdx, AttestError, EvidenceKind, PeerIdentity, Policy};
use crate::{MAX_QUOTE_LEN, OID_CLAIMS, OID_EVIDENCE_KIND, OID_QUOTE};

/// Upper bound on a peer certificate: a 32 KiB quote plus claims plus X.509 overhead.
pub const MAX_CERT_LEN: usize = 48 * 1024;

/// Verify a peer certificate completely and apply `policy` at time `now`.
pub fn verify_certificate(
    cert_der: &[u8],
    policy: &Policy,
    now: SystemTime,
) -> Result<PeerIdentity, AttestError> {
    let peer = inspect(cert_der, Some(now), Some(policy))?;
    policy.check(&peer)?;
    Ok(peer)
}

/// Identity of the peer of an established connection. The certificate was verified (policy and
/// time included) during the handshake; this re-derives the identity from it, re-checking the
/// signature and evidence binding but not the policy, which may have changed since.
pub fn peer_identity(conn: &CommonState) -> Result<PeerIdentity, AttestError> {
    let cert = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| AttestError::Tls("peer presented no certificate".into()))?;
    inspect(cert.as_ref(), None, None)
}

/// DER SubjectPublicKeyInfo of an Ed25519 certificate, for the TLS handshake signature check.
pub(crate) fn spki_of(cert_der: &[u8]) -> Result<Vec<u8>, AttestError> {
    let cert = parse(cert_der)?;
    ed25519_key(&cert)?;
    Ok(cert.public_key().raw.to_vec())
}

fn parse(cert_der: &[u8]) -> Result<X509Certificate<'_>, AttestError> {
    if cert_der.len() > MAX_CERT_LEN {
        return Err(AttestError::Certificate(format!(
            "{} bytes > {MAX_CERT_LEN}",
            cert_der.len()
        )));
    }
    let (rest, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| AttestError::Certificate(format!("DER parse: {e}")))?;
    if !rest.is_empty() {
        return Err(AttestError::Certificate(
            "trailing bytes after certificate".into(),
        ));
    }
    // The parser tolerates other tags, long-form lengths and unused bits in the unsigned
    // outer layers; only the one DER encoding of an Ed25519 certificate is accepted, so a
    // certificate has exactly one byte string (what peers pin and compare).
    if cert_der != canonical_ed25519_der(&cert) {
        return Err(AttestError::Certificate(
            "certificate is not in canonical DER (Ed25519 signature algorithm, DER lengths)".into(),
        ));
    }
    Ok(cert)
}

/// The DER encoding of a certificate with this (signed) TBS and an Ed25519 signature:
/// `SEQUENCE { tbs, SEQUENCE { OID 1.3.101.112 }, BIT STRING { 0 unused bits, signature } }`.
fn canonical_ed25519_der(cert: &X509Certificate<'_>) -> Vec<u8> {
    const ED25519_ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    let signature = cert.signature_value.data.as_ref();
    let mut content = cert.tbs_certificate.as_ref().to_vec();
    content.extend_from_slice(&ED25519_ALGORITHM);
    let mut bit_string = Vec::with_capacity(signature.len() + 4);
    der_header(&mut bit_string, 0x03, signature.len() + 1);
    bit_string.push(0);
    bit_string.extend_from_slice(signature);
    content.extend_from_slice(&bit_string);
    let mut out = Vec::with_capacity(content.len() + 4);
    der_header(&mut out, 0x30, content.len());
    out.extend_from_slice(&content);
    out
}

/// A DER tag and definite length (short form below 128, else the fewest length bytes).
fn der_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// The certificate must use an Ed25519 key and Ed25519 signatures (what we generate; it also
/// keeps the TLS signature check to one algorithm).
fn ed25519_key(cert: &X509Certificate<'_>) -> Result<[u8; 32], AttestError> {
    let spki = cert.public_key();
    if spki.algorithm.algorithm != OID_SIG_ED25519 || spki.algorithm.parameters.is_some() {
        return Err(AttestError::Certificate(format!(
            "public key algorithm {} is not Ed25519",
            spki.algorithm.algorithm
        )));
    }
    if spki.subject_public_key.unused_bits != 0 {
        return Err(AttestError::Certificate(
            "malformed Ed25519 public key".into(),
        ));
    }
    spki.subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| AttestError::Certificate("Ed25519 public key is not 32 bytes".into()))
}

/// Our three extensions, each at most once and critical.
#[derive(Default)]
struct RaTlsExtensions<'a> {
    kind: Option<&'a [u8]>,
    quote: Option<&'a [u8]>,
    claims: Option<&'a [u8]>,
}

fn oid_is(oid: &Oid<'_>, ours: &[u64]) -> bool {
    oid.iter().is_some_and(|arcs| arcs.eq(ours.iter().copied()))
}

fn ra_tls_extensions<'a>(cert: &X509Certificate<'a>) -> Result<RaTlsExtensions<'a>, AttestError> {
    let mut found = RaTlsExtensions::default();
    for ext in cert.extensions() {
        let slot = if oid_is(&ext.oid, OID_EVIDENCE_KIND) {
            &mut found.kind
        } else if oid_is(&ext.oid, OID_QUOTE) {
            &mut found.quote
        } else if oid_is(&ext.oid, OID_CLAIMS) {
            &mut found.claims
        } else if ext.critical {
            // X.509: a critical extension we do not understand means we must refuse.
            return Err(AttestError::UnknownCriticalExtension(
                ext.oid.to_id_string(),
            ));
        } else {
            continue;
        };
        if !ext.critical {
            return Err(AttestError::Certificate(format!(
                "RA-TLS extension {} must be critical",
                ext.oid.to_id_string()
            )));
        }
        if slot.replace(ext.value).is_some() {
            return Err(AttestError::Certificate(format!(
                "duplicate extension {}",
                ext.oid.to_id_string()
            )));
        }
    }
    Ok(found)
}

fn check_validity(cert: &X509Certificate<'_>, now: SystemTime) -> Result<(), AttestError> {
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => return Err(AttestError::NotYetValid),
    };
    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        return Err(AttestError::NotYetValid);
    }
    if now > validity.not_after.timestamp() {
        return Err(AttestError::Expired);
    }
    Ok(())
}

/// Everything but the final policy decision. `now: None` skips the validity window (used after
/// the handshake already checked it); `policy: Some` refuses disallowed kinds before any quote
/// work, so a flood of certificates of a refused kind costs us no ECDSA verification.
fn inspect(
    cert_der: &[u8],
    now: Option<SystemTime>,
    policy: Option<&Policy>,
) -> Result<PeerIdentity, AttestError> {
    let cert = parse(cert_der)?;
    let public_key = ed25519_key(&cert)?;
    if cert.signature_algorithm.algorithm != OID_SIG_ED25519
        || cert.tbs_certificate.signature.algorithm != OID_SIG_ED25519
    {
        return Err(AttestError::Certificate(
            "signature algorithm is not Ed25519".into(),
        ));
    }
    cert.verify_signature(None)
        .map_err(|_| AttestError::BadCertificateSignature)?;
    if let Some(now) = now {
        check_validity(&cert, now)?;
    }
    let ext = ra_tls_extensions(&cert)?;

    let kind = match ext
        .kind
        .ok_or(AttestError::MissingEvidence("evidence kind extension"))?
    {
        [b] => EvidenceKind::from_byte(*b)?,
        other => {
            return Err(AttestError::Certificate(format!(
                "evidence kind extension has {} bytes, expected 1",
                other.len()
            )))
        }
    };
    if let Some(policy) = policy {
        policy.check_kind(kind)?;
    }
    let claims_raw = ext
        .claims
        .ok_or(AttestError::MissingEvidence("claims extension"))?;
    let claims = Claims::decode(claims_raw)?;

    let measurements = match kind {
        EvidenceKind::None => {
            if ext.quote.is_some() {
                return Err(AttestError::Certificate(
                    "`none` evidence carries a quote".into(),
                ));
            }
            None
        }
        EvidenceKind::Sim | EvidenceKind::Tdx => {
            let raw = ext
                .quote
                .ok_or(AttestError::MissingEvidence("quote extension"))?;
            let body = check_quote(kind, raw, now, policy)?.body;
            if body.report_data != report_data(claims_raw) {
                return Err(AttestError::ReportDataMismatch);
            }
            Some(body.measurements())
        }
    };
    if claims.public_key != public_key {
        return Err(AttestError::KeyBindingMismatch {
            claimed: hex::encode(claims.public_key),
            actual: hex::encode(public_key),
        });
    }
    Ok(PeerIdentity {
        kind,
        public_key,
        image_hash: measurements.map(|m| m.image_hash()),
        measurements,
    })
}

/// What a verified quote says (see [`verify_quote`]).
#[derive(Clone, Debug)]
pub struct QuoteReport {
    pub kind: EvidenceKind,
    /// The TD report 1.0 fields (measurements, report data...).
    pub body: TdReport10,
    /// DCAP TCB status and advisories (`tdx` only).
    pub tcb_status: Option<String>,
    pub advisory_ids: Vec<String>,
}

impl QuoteReport {
    pub fn image_hash(&self) -> [u8; 32] {
        self.body.measurements().image_hash()
    }
}

/// Kind of a raw quote: sim certification data marks `sim`, anything else is treated as `tdx`.
pub fn quote_kind(raw: &[u8]) -> Result<EvidenceKind, AttestError> {
    let q = TdQuote::parse(raw)?;
    // The certification data type follows the 64-byte signature and 64-byte key.
    let sim = q.header.version == crate::quote::QUOTE_VERSION_4
        && q.sig_data.get(128..130) == Some(&sim::CERT_DATA_TYPE_SIM.to_le_bytes()[..]);
    Ok(if sim {
        EvidenceKind::Sim
    } else {
        EvidenceKind::Tdx
    })
}

/// Verify a bare quote (no certificate: report data is not checked) under `policy` at `now`,
/// through the same path as certificates, including the image, MRTD and RTMR allowlists.
pub fn verify_quote(
    raw: &[u8],
    policy: &Policy,
    now: SystemTime,
) -> Result<QuoteReport, AttestError> {
    let kind = quote_kind(raw)?;
    policy.check_kind(kind)?;
    let report = check_quote(kind, raw, Some(now), Some(policy))?;
    let m = report.body.measurements();
    policy.check(&PeerIdentity {
        kind,
        public_key: [0; 32],
        image_hash: Some(m.image_hash()),
        measurements: Some(m),
    })?;
    Ok(report)
}

/// The one quote verification path for measured evidence. With a policy and a time: the full
/// check (sim: chain to a pinned root, signature; tdx: DCAP with the policy's collateral and
/// cache, TCB status, pinned Intel root). Without (`peer_identity`, after the handshake already
/// verified it under the policy): sim re-checks its chain against the devnet root; tdx is only
/// parsed, since collateral lives in the policy.
fn check_quote(
    kind: EvidenceKind,
    raw: &[u8],
    now: Option<SystemTime>,
    policy: Option<&Policy>,
) -> Result<QuoteReport, AttestError> {
    if raw.len() > MAX_QUOTE_LEN {
        return Err(AttestError::quote(format!(
            "{} bytes > {MAX_QUOTE_LEN}",
            raw.len()
        )));
    }
    let now_secs = now
        .unwrap_or_else(SystemTime::now)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let plain = |body: TdReport10| QuoteReport {
        kind,
        body,
        tcb_status: None,
        advisory_ids: Vec::new(),
    };
    match (kind, policy) {
        (EvidenceKind::Sim, Some(policy)) => {
            let roots = policy.effective_root_ids(kind)?;
            Ok(plain(sim::verify_quote(raw, &roots, now_secs)?.body))
        }
        (EvidenceKind::Sim, None) => {
            let roots = [sim::sim_root_id()].into();
            Ok(plain(sim::verify_quote(raw, &roots, now_secs)?.body))
        }
        (EvidenceKind::Tdx, Some(policy)) => {
            let roots = policy.effective_root_ids(kind)?;
            let intel = tdx::intel_root_id()?;
            if !roots.contains(&intel) {
                return Err(AttestError::UntrustedRoot {
                    id: hex::encode(intel),
                });
            }
            let verifier = policy.tdx.as_ref().ok_or(AttestError::NoCollateral)?;
            let verified = verifier.verify(raw, now_secs)?;
            verified.check_tcb_status(&policy.accepted_tcb_statuses)?;
            Ok(QuoteReport {
                kind,
                body: verified.quote.body.clone(),
                tcb_status: Some(verified.tcb_status.clone()),
                advisory_ids: verified.advisory_ids.clone(),
            })
        }
        (EvidenceKind::Tdx, None) => Ok(plain(TdQuote::parse(raw)?.body)),
        (EvidenceKind::None, _) => Err(AttestError::Certificate(
            "`none` evidence has no quote".into(),
        )),
    }
}
