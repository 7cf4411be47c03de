//! RA-TLS for every Cocoon node link (DESIGN §3, §5).
//!
//! Each node owns an [`Identity`]: an Ed25519 key and a self-signed X.509 certificate that
//! carries attestation evidence in three CRITICAL extensions (critical so that a TLS stack that
//! does not understand RA-TLS refuses the certificate instead of silently ignoring the evidence):
//!
//! | OID | content |
//! |---|---|
//! | [`OID_EVIDENCE_KIND`] `1.3.6.1.4.1.12345.3` | one byte: 0 = `none`, 1 = `sim`, 2 = `tdx` |
//! | [`OID_QUOTE`] `1.3.6.1.4.1.12345.1` | the quote bytes (absent for `none`) |
//! | [`OID_CLAIMS`] `1.3.6.1.4.1.12345.2` | the serialized [`claims`] (always present) |
//!
//! The quote's 64-byte report data is SHA-512(claims) and the claims contain the certificate's
//! own public key, so a quote lifted onto another key is refused. Both sides of every TLS 1.3
//! connection present such a certificate and verify the other's against a [`Policy`] read on
//! every handshake ([`PolicySource`]).
//!
//! Modules: [`quote`] (TDX quote v4 layout), [`td_quote`] (v4/v5 parsing of real quotes),
//! [`sim`] (software TEE quotes chained to a devnet root), [`tdx`] (DCAP verification of real
//! quotes, collateral, cache), [`pccs`] (collateral from a PCCS/PCS URL), [`tsm`] (real quotes from configfs-tsm), `evidence` (generation,
//! renewal), `verify` (one verification path for every kind), `tls` (rustls glue), [`pow`].

mod chain;
pub mod claims;
mod error;
mod evidence;
mod measurements;
pub mod pccs;
mod policy;
pub mod pow;
pub mod quote;
mod renew;
pub mod report;
pub mod sim;
pub mod td_quote;
pub mod tdx;
#[cfg(test)]
mod tdx_tests;
mod tls;
pub mod tsm;
mod verify;
#[cfg(test)]
mod verify_tests;

use std::fmt;
use std::str::FromStr;

pub use error::AttestError;
pub use evidence::Identity;
pub use measurements::Measurements;
pub use pccs::PccsCollateral;
pub use policy::{Policy, PolicySource, SharedPolicy};
pub use renew::{keep_renewed, renewal_due};
pub use tdx::{CollateralSource, FileCollateral, TdxVerifier};
pub use tls::{attest_error, ensure_crypto_provider};
pub use verify::{peer_identity, quote_kind, verify_certificate, verify_quote, QuoteReport};

/// The TLS server name every client uses. Names mean nothing in RA-TLS (identity is the attested
/// key), so the verifiers ignore it; it only has to be a valid DNS name for rustls.
pub const TLS_SERVER_NAME: &str = "cocoon";

/// ALPN protocol both sides offer: gRPC runs over HTTP/2 on top of the RA-TLS link.
pub const ALPN_H2: &[u8] = b"h2";

/// X.509 extension carrying the quote (evidence).
pub const OID_QUOTE: &[u64] = &[1, 3, 6, 1, 4, 1, 12345, 1];
/// X.509 extension carrying the serialized claims.
pub const OID_CLAIMS: &[u64] = &[1, 3, 6, 1, 4, 1, 12345, 2];
/// X.509 extension carrying the evidence kind byte.
pub const OID_EVIDENCE_KIND: &[u64] = &[1, 3, 6, 1, 4, 1, 12345, 3];

/// Largest quote extension we accept (same cap as COCOON's C++ implementation).
pub const MAX_QUOTE_LEN: usize = 32 * 1024;

/// Which kind of attestation evidence a certificate carries.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// No attestation at all (development only).
    None,
    /// Software TEE: a TDX-layout quote chained to the public devnet simulation root.
    Sim,
    /// Real Intel TDX: a quote from configfs-tsm, verified with DCAP collateral.
    Tdx,
}

impl EvidenceKind {
    /// The byte stored in the [`OID_EVIDENCE_KIND`] extension.
    pub fn to_byte(self) -> u8 {
        match self {
            EvidenceKind::None => 0,
            EvidenceKind::Sim => 1,
            EvidenceKind::Tdx => 2,
        }
    }

    /// Inverse of [`EvidenceKind::to_byte`].
    pub fn from_byte(b: u8) -> Result<Self, AttestError> {
        match b {
            0 => Ok(EvidenceKind::None),
            1 => Ok(EvidenceKind::Sim),
            2 => Ok(EvidenceKind::Tdx),
            other => Err(AttestError::UnknownEvidenceKind(other)),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::None => "none",
            EvidenceKind::Sim => "sim",
            EvidenceKind::Tdx => "tdx",
        }
    }
}

impl fmt::Display for EvidenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvidenceKind {
    type Err = AttestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(EvidenceKind::None),
            "sim" => Ok(EvidenceKind::Sim),
            "tdx" => Ok(EvidenceKind::Tdx),
            other => Err(AttestError::UnknownEvidenceKindName(other.to_string())),
        }
    }
}

/// What a verified peer certificate proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub kind: EvidenceKind,
    /// The peer's Ed25519 TLS key (bound to the evidence through the claims).
    pub public_key: [u8; 32],
    /// SHA-256 over the peer's TD measurements; `None` for `none` evidence.
    pub image_hash: Option<[u8; 32]>,
    /// The peer's TD measurements (MRTD, RTMRs...); `None` for `none` evidence.
    pub measurements: Option<Measurements>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_kind_text_and_byte_roundtrip() {
        for k in [EvidenceKind::None, EvidenceKind::Sim, EvidenceKind::Tdx] {
            assert_eq!(k.to_string().parse::<EvidenceKind>().unwrap(), k);
            assert_eq!(EvidenceKind::from_byte(k.to_byte()).unwrap(), k);
        }
        assert!("tdx2".parse::<EvidenceKind>().is_err());
        assert!(matches!(
            EvidenceKind::from_byte(7),
            Err(AttestError::UnknownEvidenceKind(7))
        ));
        assert_eq!(
            serde_json::to_string(&EvidenceKind::Sim).unwrap(),
            "\"sim\""
        );
        let k: EvidenceKind = serde_json::from_str("\"none\"").unwrap();
        assert_eq!(k, EvidenceKind::None);
    }
}
