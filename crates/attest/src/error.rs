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
    #[error("unknown evidence kind `{0}` (expected none or sim)")]
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
}

impl AttestError {
    pub(crate) fn quote(msg: impl Into<String>) -> Self {
        AttestError::BadQuote(msg.into())
    }
}
