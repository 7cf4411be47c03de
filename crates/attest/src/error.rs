//! Errors of the attestation crate. Every refusal has its own variant so callers (and tests) can
//! tell *why* a peer was refused without parsing strings.

use crate::EvidenceKind;

/// Why evidence, a certificate or a TLS setup was refused.
#[derive(thiserror::Error, Debug)]
pub enum AttestError {
    /// The quote's report data is not SHA-512 of the certificate's claims: the quote was made for
    /// another certificate (lifted) or the claims were edited.
    #[error("report data does not match SHA-512 of the certificate claims")]
    ReportDataMismatch,
    /// The claims bind a different public key than the certificate's own key.
    #[error("claims bind public key {claimed} but the certificate key is {actual}")]
    KeyBindingMismatch { claimed: String, actual: String },
    /// The measured image is not in the policy's allowlist.
    #[error("image hash {hash} is not allowed by policy")]
    ImageHashNotAllowed { hash: String },
    /// The policy does not accept this kind of evidence at all.
    #[error("evidence kind `{kind}` is not allowed by policy")]
    EvidenceKindNotAllowed { kind: EvidenceKind },
    /// Unknown evidence kind byte in the certificate.
    #[error("unknown evidence kind {0}")]
    UnknownEvidenceKind(u8),
    /// Unknown evidence kind name (config, CLI).
    #[error("unknown evidence kind `{0}` (expected none, sim or tdx)")]
    UnknownEvidenceKindName(String),
    /// The quote is malformed or not of the expected type (layout, lengths, version, TEE type...).
    #[error("bad quote: {0}")]
    BadQuote(String),
    /// The quote's ECDSA signature does not verify over header‖body.
    #[error("quote signature is invalid")]
    BadSignature,
    /// The quote is signed by an attestation key that is not the one we pin.
    #[error("quote attestation key is not trusted")]
    UntrustedAttestationKey,
    /// The certificate's self-signature does not verify.
    #[error("certificate self-signature is invalid")]
    BadCertificateSignature,
    /// The certificate is past its `notAfter`.
    #[error("certificate has expired")]
    Expired,
    /// The certificate's `notBefore` is in the future.
    #[error("certificate is not yet valid")]
    NotYetValid,
    /// A required RA-TLS extension (evidence kind, quote or claims) is absent.
    #[error("missing attestation evidence: {0}")]
    MissingEvidence(&'static str),
    /// A critical extension we do not understand: X.509 says we must refuse the certificate.
    #[error("unknown critical extension {0}")]
    UnknownCriticalExtension(String),
    /// The claims blob is malformed.
    #[error("bad claims: {0}")]
    BadClaims(String),
    /// The certificate is malformed or not of the expected shape (key type, extensions...).
    #[error("bad certificate: {0}")]
    Certificate(String),
    /// Building a TLS configuration failed, or the TLS layer refused something.
    #[error("tls: {0}")]
    Tls(String),
    /// Local key or certificate generation failed.
    #[error("key generation: {0}")]
    KeyGen(String),
    /// The TD's MRTD is not in the policy's allowlist.
    #[error("MRTD {mrtd} is not allowed by policy")]
    MrtdNotAllowed { mrtd: String },
    /// The TD's RTMR0-3 set is not in the policy's allowlist.
    #[error("RTMR set is not allowed by policy (RTMR0 {rtmr0})")]
    RtmrNotAllowed { rtmr0: String },
    /// The quote's certificate chain ends in a root whose key id is not pinned by the policy.
    #[error("quote certificate chain ends in untrusted root key id {id}")]
    UntrustedRoot { id: String },
    /// The quote's certificate chain is malformed, expired or does not verify.
    #[error("quote certificate chain: {0}")]
    BadCertChain(String),
    /// The collateral (TCB info, QE identity, CRLs) is not yet valid at the verification time.
    #[error("collateral not yet valid: valid from {not_before}, verification time {now}")]
    CollateralNotYetValid { not_before: u64, now: u64 },
    /// The collateral expired before the verification time.
    #[error("collateral expired: valid until {not_after}, verification time {now}")]
    CollateralExpired { not_after: u64, now: u64 },
    /// DCAP refused the collateral itself (expired CRL or certificate, bad signature...).
    #[error("collateral rejected: {0}")]
    CollateralRejected(String),
    /// The collateral is unreadable or malformed.
    #[error("bad collateral: {0}")]
    BadCollateral(String),
    /// Collateral for this platform is not cached yet (or expired); a background fetch from the
    /// PCCS/PCS is under way. Transient: the peer's redial succeeds once it lands.
    #[error("DCAP collateral for {platform} is being fetched from {url}; retry shortly (last fetch error: {last_error})")]
    CollateralPending {
        platform: String,
        url: String,
        last_error: String,
    },
    /// Fetching collateral from the PCCS/PCS failed (network, HTTP status, malformed answer).
    #[error("collateral fetch: {0}")]
    CollateralFetch(String),
    /// The policy has no collateral source, so real TDX quotes cannot be verified.
    #[error("no DCAP collateral source configured for tdx evidence")]
    NoCollateral,
    /// The platform's TCB matches no level in Intel's TCB info.
    #[error("no matching TCB level (platform TCB unknown to the collateral)")]
    TcbLevelNotFound,
    /// The platform's TCB status is not accepted by the policy.
    #[error("TCB status {status} is not allowed by policy (advisories: {advisories})")]
    TcbStatusNotAllowed { status: String, advisories: String },
    /// The TD runs in debug mode: its memory is readable by the host.
    #[error("TD is in debug mode")]
    DebugTd,
    /// Any other DCAP verification failure (QE report, PCK chain, FMSPC...), with dcap-qvl's reason.
    #[error("DCAP verification failed: {0}")]
    DcapVerification(String),
    /// Real quote generation is impossible here (not inside a TDX guest, no configfs-tsm...).
    #[error("cannot generate a TDX quote: {0}")]
    NotInTd(String),
    /// The configfs-tsm interface failed while generating a quote.
    #[error("TDX quote generation failed: {0}")]
    QuoteGeneration(String),
}

impl AttestError {
    pub(crate) fn quote(msg: impl Into<String>) -> Self {
        AttestError::BadQuote(msg.into())
    }
}
