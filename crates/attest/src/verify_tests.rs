//! Certificate-level verification tests that need to forge certificates field by field.

use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use time::OffsetDateTime;

use crate::claims::{report_data, Claims};
use crate::evidence::{cert_params, critical_ext, ed25519_public, new_key, Binding};
use crate::{sim, verify_certificate, AttestError, EvidenceKind, Identity, Measurements, Policy};
use crate::{OID_CLAIMS, OID_EVIDENCE_KIND, OID_QUOTE};

/// A predicate on the expected refusal.
type ErrCheck = fn(&AttestError) -> bool;

fn now() -> SystemTime {
    SystemTime::now()
}

fn verify(der: &[u8]) -> Result<crate::PeerIdentity, AttestError> {
    verify_certificate(der, &Policy::allow_all(), now())
}

/// Valid claims and sim quote for `key`.
fn sim_parts(key: &KeyPair, m: &Measurements) -> (Vec<u8>, Vec<u8>) {
    let claims = Claims::new(ed25519_public(key).unwrap()).encode().unwrap();
    let quote = sim::build_quote(m, &report_data(&claims)).unwrap();
    (quote, claims)
}

/// A certificate signed by `key` with arbitrary RA-TLS content; `tweak` edits anything else.
fn forge(
    key: &KeyPair,
    kind: EvidenceKind,
    quote: Option<Vec<u8>>,
    claims: Option<Vec<u8>>,
    tweak: impl FnOnce(&mut CertificateParams),
) -> Vec<u8> {
    let mut params = cert_params(kind, quote, claims.clone().unwrap_or_default());
    if claims.is_none() {
        params
            .custom_extensions
            .retain(|e| !e.oid_components().eq(OID_CLAIMS.iter().copied()));
    }
    let t = OffsetDateTime::now_utc();
    params.not_before = t - time::Duration::minutes(5);
    params.not_after = t + time::Duration::days(1);
    tweak(&mut params);
    params.self_signed(key).unwrap().der().to_vec()
}

fn sim_cert(tweak: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let key = new_key().unwrap();
    let (q, c) = sim_parts(&key, &Measurements::for_label("t"));
    forge(&key, EvidenceKind::Sim, Some(q), Some(c), tweak)
}

#[test]
fn genuine_identities_verify() {
    let m = Measurements::for_label("worker");
    let id = Identity::generate(EvidenceKind::Sim, &m).unwrap();
    let peer = verify(&id.cert_der()).unwrap();
    assert_eq!(peer.kind, EvidenceKind::Sim);
    assert_eq!(peer.public_key, id.public_key());
    assert_eq!(peer.image_hash, Some(m.image_hash()));
    assert_eq!(id.image_hash(), Some(m.image_hash()));

    let id = Identity::generate(EvidenceKind::None, &m).unwrap();
    let peer = verify(&id.cert_der()).unwrap();
    assert_eq!(
        (peer.kind, peer.public_key, peer.image_hash),
        (EvidenceKind::None, id.public_key(), None)
    );
    assert_eq!(id.image_hash(), None);
}

#[test]
fn foreign_bindings_refused() {
    let m = Measurements::for_label("w");
    let lifted = Identity::generate_with_foreign_binding(EvidenceKind::Sim, &m).unwrap();
    assert!(matches!(
        verify(&lifted.cert_der()),
        Err(AttestError::ReportDataMismatch)
    ));
    let copied = Identity::generate_bound(EvidenceKind::Sim, &m, Binding::ForeignClaims).unwrap();
    assert!(matches!(
        verify(&copied.cert_der()),
        Err(AttestError::KeyBindingMismatch { .. })
    ));
    let none = Identity::generate_with_foreign_binding(EvidenceKind::None, &m).unwrap();
    assert!(matches!(
        verify(&none.cert_der()),
        Err(AttestError::KeyBindingMismatch { .. })
    ));
}

#[test]
fn validity_window_enforced() {
    let der = sim_cert(|_| {});
    verify(&der).unwrap();
    let later = now() + Duration::from_secs(2 * 86_400);
    assert!(matches!(
        verify_certificate(&der, &Policy::allow_all(), later),
        Err(AttestError::Expired)
    ));
    let earlier = now() - Duration::from_secs(3600);
    assert!(matches!(
        verify_certificate(&der, &Policy::allow_all(), earlier),
        Err(AttestError::NotYetValid)
    ));
    let expired =
        sim_cert(|p| p.not_after = OffsetDateTime::now_utc() - time::Duration::minutes(1));
    assert!(matches!(verify(&expired), Err(AttestError::Expired)));
}

#[test]
fn unknown_critical_extension_refused_noncritical_ignored() {
    let der = sim_cert(|p| {
        p.custom_extensions
            .push(critical_ext(&[1, 2, 3, 4], vec![1]))
    });
    assert!(
        matches!(verify(&der), Err(AttestError::UnknownCriticalExtension(ref o)) if o == "1.2.3.4")
    );
    let der = sim_cert(|p| {
        p.custom_extensions
            .push(CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![1]))
    });
    verify(&der).unwrap();
}

#[test]
fn our_extensions_must_be_critical_and_unique() {
    let der = sim_cert(|p| {
        for e in &mut p.custom_extensions {
            if e.oid_components().eq(OID_QUOTE.iter().copied()) {
                e.set_criticality(false);
            }
        }
    });
    assert!(matches!(verify(&der), Err(AttestError::Certificate(ref m)) if m.contains("critical")));
    let der = sim_cert(|p| {
        p.custom_extensions
            .push(critical_ext(OID_EVIDENCE_KIND, vec![1]))
    });
    let err = verify(&der).unwrap_err();
    assert!(
        matches!(err, AttestError::Certificate(ref m) if m.contains("duplicate")),
        "{err}"
    );
}

#[test]
fn missing_pieces_refused() {
    let key = new_key().unwrap();
    let (q, c) = sim_parts(&key, &Measurements::for_label("x"));
    let no_quote = forge(&key, EvidenceKind::Sim, None, Some(c.clone()), |_| {});
    assert!(matches!(
        verify(&no_quote),
        Err(AttestError::MissingEvidence(_))
    ));
    let no_claims = forge(&key, EvidenceKind::Sim, Some(q.clone()), None, |_| {});
    assert!(matches!(
        verify(&no_claims),
        Err(AttestError::MissingEvidence(_))
    ));
    let no_kind = forge(
        &key,
        EvidenceKind::Sim,
        Some(q.clone()),
        Some(c.clone()),
        |p| {
            p.custom_extensions
                .retain(|e| !e.oid_components().eq(OID_EVIDENCE_KIND.iter().copied()))
        },
    );
    assert!(matches!(
        verify(&no_kind),
        Err(AttestError::MissingEvidence(_))
    ));
    // `none` may not smuggle a quote; unknown kind bytes are refused.
    let none_with_quote = forge(
        &key,
        EvidenceKind::None,
        Some(q.clone()),
        Some(c.clone()),
        |_| {},
    );
    assert!(matches!(
        verify(&none_with_quote),
        Err(AttestError::Certificate(_))
    ));
    let bad_kind = forge(&key, EvidenceKind::Sim, Some(q), Some(c), |p| {
        p.custom_extensions
            .retain(|e| !e.oid_components().eq(OID_EVIDENCE_KIND.iter().copied()));
        p.custom_extensions
            .push(critical_ext(OID_EVIDENCE_KIND, vec![9]));
    });
    assert!(matches!(
        verify(&bad_kind),
        Err(AttestError::UnknownEvidenceKind(9))
    ));
}

#[test]
fn quote_tampering_inside_certificate_refused() {
    let key = new_key().unwrap();
    let (q, c) = sim_parts(&key, &Measurements::for_label("x"));
    let cases: [(usize, ErrCheck); 5] = [
        (0, |e| matches!(e, AttestError::BadQuote(_))), // version
        (200, |e| matches!(e, AttestError::BadSignature)), // mrtd
        (600, |e| matches!(e, AttestError::BadSignature)), // report data
        (650, |e| matches!(e, AttestError::BadSignature)), // signature
        (720, |e| matches!(e, AttestError::UntrustedAttestationKey)), // attestation key
    ];
    for (off, expect) in cases {
        let mut bad = q.clone();
        bad[off] ^= 0x01;
        let der = forge(&key, EvidenceKind::Sim, Some(bad), Some(c.clone()), |_| {});
        let err = verify(&der).unwrap_err();
        assert!(expect(&err), "offset {off}: {err}");
    }
    let der = forge(
        &key,
        EvidenceKind::Sim,
        Some(q[..700].to_vec()),
        Some(c.clone()),
        |_| {},
    );
    assert!(matches!(verify(&der), Err(AttestError::BadQuote(_))));
    let der = forge(
        &key,
        EvidenceKind::Sim,
        Some(vec![0xAB; 64]),
        Some(c),
        |_| {},
    );
    assert!(matches!(verify(&der), Err(AttestError::BadQuote(_))));
}

#[test]
fn kind_policy_checked_before_quote() {
    let key = new_key().unwrap();
    let (_, c) = sim_parts(&key, &Measurements::for_label("x"));
    let der = forge(&key, EvidenceKind::Sim, Some(vec![0; 3]), Some(c), |_| {});
    let policy = Policy {
        allow_sim: false,
        ..Policy::allow_all()
    };
    assert!(matches!(
        verify_certificate(&der, &policy, now()),
        Err(AttestError::EvidenceKindNotAllowed {
            kind: EvidenceKind::Sim
        })
    ));
}

#[test]
fn image_allowlist_applied() {
    let m = Measurements::for_label("proxy");
    let id = Identity::generate(EvidenceKind::Sim, &m).unwrap();
    let ok = Policy::sim_with_images([m.image_hash()]);
    verify_certificate(&id.cert_der(), &ok, now()).unwrap();
    let other = Policy::sim_with_images([Measurements::for_label("x").image_hash()]);
    let err = verify_certificate(&id.cert_der(), &other, now()).unwrap_err();
    assert!(
        matches!(err, AttestError::ImageHashNotAllowed { ref hash } if *hash == hex::encode(m.image_hash()))
    );
}

#[test]
fn broken_certificates_refused() {
    let der = sim_cert(|_| {});
    // Last byte is inside the signature BIT STRING.
    let mut bad_sig = der.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    assert!(matches!(
        verify(&bad_sig),
        Err(AttestError::BadCertificateSignature)
    ));
    // A byte inside the signed TBS (the serial) also breaks the self-signature.
    let mut bad_tbs = der.clone();
    bad_tbs[20] ^= 0x01;
    let err = verify(&bad_tbs).unwrap_err();
    assert!(matches!(err, AttestError::BadCertificateSignature), "{err}");
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(
        verify(&trailing),
        Err(AttestError::Certificate(_))
    ));
    assert!(matches!(
        verify(&[0x30, 0x03, 1, 2]),
        Err(AttestError::Certificate(_))
    ));
    assert!(verify(&[]).is_err());
    assert!(verify(&vec![0x30; 100_000]).is_err());
    for cut in [1, 10, der.len() / 2, der.len() - 1] {
        assert!(verify(&der[..cut]).is_err());
    }
}

#[test]
fn non_ed25519_certificate_refused() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let claims = Claims::new([0; 32]).encode().unwrap();
    let der = forge(&key, EvidenceKind::None, None, Some(claims), |_| {});
    assert!(matches!(verify(&der), Err(AttestError::Certificate(ref m)) if m.contains("Ed25519")));
}
