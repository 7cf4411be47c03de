//! Fuzzing the RA-TLS certificate path every handshake runs on the peer's certificate
//! (`verify_certificate`: X.509 DER, self-signature, critical extensions, evidence kind, claims,
//! quote, key binding, policy) and the claims codec. Properties:
//!
//! - nothing panics on arbitrary DER, mutated genuine certificates or arbitrary claims, and
//!   memory stays linear in the input;
//! - a genuine certificate verifies, and any change to its bytes is refused;
//! - claims decode exactly what encodes: decode(x) = c ⇒ encode(c) = x.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-attest --test fuzz_ratls` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use cocoon_attest::claims::{Claims, MAX_CLAIMS_LEN};
use cocoon_attest::{verify_certificate, EvidenceKind, Identity, Measurements, Policy};
use proptest::prelude::*;
use support::{assert_linear, config, mutate, mutations, peak_alloc};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The signed part of a certificate and its signature: what no accepted edit may change.
fn signed_content(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some((
        cert.tbs_certificate.as_ref().to_vec(),
        cert.signature_value.data.to_vec(),
    ))
}

/// Genuine certificates of each evidence kind we can make here (tdx needs real hardware).
fn certs() -> &'static [(EvidenceKind, Vec<u8>, SystemTime)] {
    static CERTS: OnceLock<Vec<(EvidenceKind, Vec<u8>, SystemTime)>> = OnceLock::new();
    CERTS.get_or_init(|| {
        [EvidenceKind::None, EvidenceKind::Sim]
            .into_iter()
            .map(|kind| {
                let id = Identity::generate(kind, &Measurements::for_label("fuzz")).unwrap();
                (
                    kind,
                    id.cert_der(),
                    id.issued_at() + Duration::from_secs(600),
                )
            })
            .collect()
    })
}

fn verify(der: &[u8], at: SystemTime) -> Result<cocoon_attest::PeerIdentity, String> {
    let (r, peak) = peak_alloc(|| verify_certificate(der, &Policy::allow_all(), at));
    // X.509 parsing and the quote's chain: a few copies of the input at most.
    assert_linear("verify_certificate", der.len(), peak, 16, 256 << 10);
    r.map_err(|e| {
        let msg = e.to_string();
        assert!(!msg.is_empty());
        msg
    })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_der_is_refused(der in support::bytes(600), genuine_at in any::<bool>()) {
        let at = if genuine_at { certs()[0].2 } else { SystemTime::UNIX_EPOCH };
        prop_assert!(verify(&der, at).is_err());
    }

    /// Every edit of a genuine certificate is refused, except (known issue, see
    /// `known_issue_unsigned_certificate_encoding_is_malleable`) edits of the unsigned outer
    /// encoding that leave the signed part and the signature as they were.
    #[test]
    fn mutated_certificates_are_refused(
        which in 0usize..2,
        edits in mutations(4),
    ) {
        let (kind, der, at) = &certs()[which];
        let bad = mutate(der, &edits);
        match verify(&bad, *at) {
            Ok(peer) => {
                prop_assert_eq!(peer.kind, *kind);
                prop_assert!(
                    bad == *der || signed_content(&bad) == signed_content(der),
                    "an edit of the signed content verified"
                );
            }
            Err(_) => prop_assert_ne!(&bad, der),
        }
    }

    #[test]
    fn claims_decode_exactly_what_encodes(raw in prop_oneof![
        support::bytes(200),
        // A version byte and a key, then tag-length-value fields.
        (prop::collection::vec(any::<u8>(), 32),
         prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..6),
            prop_oneof![Just(None), any::<u16>().prop_map(Some)]), 0..6))
            .prop_map(|(key, fields)| {
                let mut out = vec![1];
                out.extend_from_slice(&key);
                for (tag, value, len) in fields {
                    out.push(tag);
                    let len = len.unwrap_or(value.len() as u16);
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(&value);
                }
                out
            }),
    ]) {
        let (decoded, peak) = peak_alloc(|| Claims::decode(&raw));
        assert_linear("Claims::decode", raw.len(), peak, 16, 1024);
        match decoded {
            Ok(c) => {
                prop_assert!(raw.len() <= MAX_CLAIMS_LEN);
                prop_assert_eq!(c.encode().unwrap(), raw);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn claims_roundtrip(
        key in any::<[u8; 32]>(),
        fields in prop::collection::btree_map(any::<u8>(), prop::collection::vec(any::<u8>(), 0..40), 0..8),
    ) {
        let c = Claims { public_key: key, fields: fields.into_iter().collect() };
        let enc = c.encode().unwrap();
        prop_assert_eq!(Claims::decode(&enc).unwrap(), c);
    }
}

// ------------------------------------------------------------------ regression corpus

/// DER shapes on the edges: empty, lengths past the end, indefinite and long-form lengths,
/// deep nesting, and a certificate with bytes appended.
#[test]
fn certificate_corpus() {
    let at = certs()[0].2;
    let mut corpus: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x30],
        vec![0x30, 0x00],
        vec![0x30, 0x80, 0x00, 0x00],
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        vec![
            0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
        [vec![0x30, 0x82, 0xff, 0xff], vec![0; 64]].concat(),
        vec![0x30; 10_000],
        [0x30, 0x80].repeat(10_000),
        vec![0u8; 48 * 1024 + 1],
    ];
    for (_, der, _) in certs() {
        let mut longer = der.clone();
        longer.push(0);
        corpus.push(longer);
        corpus.push(der[..der.len() - 1].to_vec());
    }
    for der in &corpus {
        assert!(verify(der, at).is_err(), "{} bytes accepted", der.len());
    }
    for (kind, der, at) in certs() {
        assert_eq!(verify(der, *at).unwrap().kind, *kind);
    }
}

/// Every single-byte change of the signed part (the TBS certificate) or of the signature
/// value of a genuine certificate is refused.
#[test]
fn every_signed_byte_of_a_certificate_matters() {
    for (kind, der, at) in certs() {
        let (tbs, sig) = signed_content(der).unwrap();
        let tbs_at = der.windows(tbs.len()).position(|w| w == tbs).unwrap();
        let sig_at = der.len() - sig.len();
        for i in (tbs_at..tbs_at + tbs.len()).chain(sig_at..der.len()) {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= x;
                assert!(
                    verify(&bad, *at).is_err(),
                    "{kind} certificate: byte {i} ^ {x:#04x} still verifies"
                );
            }
        }
    }
}

/// Every byte of a genuine certificate matters, the unsigned outer layers included: one
/// certificate has exactly one accepted byte string. (x509-parser alone tolerates other tags
/// on the outer Certificate and signatureAlgorithm SEQUENCEs, the OID and the signature BIT
/// STRING, non-zero unused bits and long-form lengths; `verify_certificate` compares the
/// input with the canonical DER re-encoding.)
#[test]
fn every_byte_of_a_certificate_matters() {
    for (kind, der, at) in certs() {
        let mut accepted = Vec::new();
        for i in 0..der.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= x;
                if verify(&bad, *at).is_ok() {
                    accepted.push(format!("byte {i} ({:#04x}) ^ {x:#04x}", der[i]));
                }
            }
        }
        if der[1] == 0x82 {
            let mut long = vec![0x30, 0x83, 0x00];
            long.extend_from_slice(&der[2..]);
            if verify(&long, *at).is_ok() {
                accepted.push("long-form outer length".into());
            }
        }
        assert!(
            accepted.is_empty(),
            "{kind} certificate: edits accepted: {accepted:?}"
        );
    }
}

#[test]
fn claims_corpus() {
    for raw in [
        &[][..],
        &[1],
        &[2; 33],
        &[1; 33][..],
        &[1; 34][..],                                      // truncated length
        &[&[1; 33][..], &[5, 0xff, 0xff]].concat()[..],    // 65535 bytes announced
        &[&[1; 33][..], &[5, 0, 0, 5, 0, 0]].concat()[..], // duplicate tag
        &[&[1; 33][..], &[6, 0, 0, 5, 0, 0]].concat()[..], // decreasing tags
        &vec![1; MAX_CLAIMS_LEN][..],
        &vec![1; MAX_CLAIMS_LEN + 1][..],
    ] {
        if let Ok(c) = Claims::decode(raw) {
            assert_eq!(c.encode().unwrap(), raw);
        }
    }
}
