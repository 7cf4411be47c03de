//! The RA-TLS certificate every handshake verifies on the peer's side
//! (`cocoon_attest::verify_certificate`: X.509 DER, self-signature, validity, critical
//! extensions, evidence kind, claims, the quote, key binding, policy), and the claims codec
//! inside it (`claims::Claims::decode`). Properties (as in `crates/attest/tests/fuzz_ratls.rs`):
//!
//! - nothing panics; verification holds at most 16 bytes per input byte (plus 256 KiB), claims
//!   decoding 16 per byte (plus 1 KiB);
//! - an accepted certificate binds the key it carries, is within the size limit, and is not
//!   `tdx` (no genuine TDX evidence can be made here); the same bytes give the same answer
//!   again; every refusal carries a message;
//! - claims decode exactly what encodes: decode(x) = c ⇒ encode(c) = x.
//!
//! Certificates are checked at ten minutes past their own `notBefore` (so the generated seeds
//! in `fuzz/corpus/ratls_cert` stay valid), and at the epoch, where nothing may pass.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cocoon_attest::claims::{Claims, MAX_CLAIMS_LEN};
use cocoon_attest::{verify_certificate, EvidenceKind, PeerIdentity, Policy};
use cocoon_fuzz::{linear, within};
use libfuzzer_sys::fuzz_target;
use x509_parser::prelude::{FromDer, X509Certificate};

/// `cocoon_attest::verify::MAX_CERT_LEN` (a private module).
const MAX_CERT_LEN: usize = 48 * 1024;

fn verify(der: &[u8], at: SystemTime) -> Option<PeerIdentity> {
    let got = within(
        "verify_certificate",
        linear(der.len(), 16, 256 << 10),
        || verify_certificate(der, &Policy::allow_all(), at),
    );
    match got {
        Ok(peer) => Some(peer),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

/// The certificate's `notBefore` plus ten minutes, if it parses that far.
fn valid_time(der: &[u8]) -> Option<SystemTime> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let secs = u64::try_from(cert.validity().not_before.timestamp()).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs.checked_add(600)?))
}

fuzz_target!(|der: &[u8]| {
    assert!(
        verify(der, UNIX_EPOCH).is_none(),
        "a certificate valid at the epoch"
    );
    if let Some(at) = valid_time(der) {
        if let Some(peer) = verify(der, at) {
            assert!(der.len() <= MAX_CERT_LEN);
            assert_ne!(peer.kind, EvidenceKind::Tdx, "tdx evidence verified");
            assert_eq!(peer.measurements.is_some(), peer.kind != EvidenceKind::None);
            let (_, cert) = X509Certificate::from_der(der).unwrap();
            assert_eq!(
                &cert.public_key().subject_public_key.data[..],
                &peer.public_key[..]
            );
            assert_eq!(verify(der, at), Some(peer), "not deterministic");
        }
    }
    let decoded = within("Claims::decode", linear(der.len(), 16, 1024), || {
        Claims::decode(der)
    });
    match decoded {
        Ok(c) => {
            assert!(der.len() <= MAX_CLAIMS_LEN);
            assert_eq!(
                c.encode().unwrap(),
                der,
                "claims do not re-encode to their bytes"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
