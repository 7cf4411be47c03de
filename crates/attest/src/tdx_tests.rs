//! Real Intel TDX quotes (testdata/tdx, from dcap-qvl, MIT) verified offline at the times given
//! in testdata/tdx/README.md, through the DCAP verifier and the certificate path.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::claims::{report_data, Claims};
use crate::evidence::{cert_params, ed25519_public, new_key};
use crate::tdx::{self, collateral_window, parse_collateral, Collateral, TdxVerifier};
use crate::{verify_certificate, verify_quote, AttestError, EvidenceKind, FileCollateral, Policy};

const V4: &[u8] = include_bytes!("../testdata/tdx/tdx_quote");
const V4_COLL: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_collateral.json");
const V4_AT: u64 = 1_750_332_747;
const V5: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_td15ex");
const V5_COLL: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_td15ex_collateral.json");
const V5_AT: u64 = 1_791_421_786;
const OUTDATED: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_outdated");
const OUTDATED_COLL: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_outdated_collateral.json");
const OUTDATED_AT: u64 = 1_771_415_931;

fn coll(json: &[u8]) -> Collateral {
    parse_collateral(json).unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Production policy with the given collateral.
fn production(json: &[u8]) -> Policy {
    Policy {
        tdx: Some(Arc::new(TdxVerifier::new(Arc::new(
            FileCollateral::from_collateral(coll(json)),
        )))),
        ..Policy::default()
    }
}

#[test]
fn v4_quote_is_up_to_date() {
    let v = tdx::verify_quote(V4, &coll(V4_COLL), V4_AT).unwrap();
    assert_eq!(v.tcb_status, "UpToDate");
    assert!(v.advisory_ids.is_empty(), "{:?}", v.advisory_ids);
    assert_eq!(v.quote.header.version, 4);
    // Through the policy path: image hash = the Measurements formula over the quote's registers.
    let report = verify_quote(V4, &production(V4_COLL), at(V4_AT)).unwrap();
    assert_eq!(report.kind, EvidenceKind::Tdx);
    assert_eq!(report.tcb_status.as_deref(), Some("UpToDate"));
    assert_eq!(
        report.image_hash(),
        v.quote.body.measurements().image_hash()
    );
}

#[test]
fn v5_td15_quote_is_up_to_date() {
    let v = tdx::verify_quote(V5, &coll(V5_COLL), V5_AT).unwrap();
    assert_eq!(v.tcb_status, "UpToDate");
    assert_eq!(v.quote.header.version, 5);
    assert_eq!(v.quote.body_kind, crate::td_quote::TdBodyKind::Td15Ex);
}

#[test]
fn outdated_platform_has_no_matching_tcb_level() {
    let err = tdx::verify_quote(OUTDATED, &coll(OUTDATED_COLL), OUTDATED_AT).unwrap_err();
    assert!(matches!(err, AttestError::TcbLevelNotFound), "{err}");
    assert!(err.to_string().contains("no matching TCB level"));
}

#[test]
fn time_outside_the_collateral_window_is_refused() {
    let c = coll(V4_COLL);
    let (lo, hi) = collateral_window(&c).unwrap();
    assert!(lo <= V4_AT && V4_AT <= hi, "{lo} {V4_AT} {hi}");
    let err = tdx::verify_quote(V4, &c, hi + 1).unwrap_err();
    assert!(
        matches!(err, AttestError::CollateralExpired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("collateral expired"));
    let err = tdx::verify_quote(V4, &c, V4_AT + 3 * 365 * 86_400).unwrap_err();
    assert!(
        matches!(err, AttestError::CollateralExpired { .. }),
        "{err}"
    );
    let err = tdx::verify_quote(V4, &c, lo - 1).unwrap_err();
    assert!(
        matches!(err, AttestError::CollateralNotYetValid { .. }),
        "{err}"
    );
}

#[test]
fn swapped_report_data_breaks_the_signature() {
    let mut bad = V4.to_vec();
    // report_data: last 64 bytes of the v4 TD report body (offset 48 + 520).
    bad[568..632].copy_from_slice(&report_data(b"another key's claims"));
    let err = tdx::verify_quote(&bad, &coll(V4_COLL), V4_AT).unwrap_err();
    assert!(matches!(err, AttestError::BadSignature), "{err}");
}

#[test]
fn every_bit_flip_is_refused() {
    // One flipped bit per byte (bit = offset mod 8) over the whole quote, padding included.
    // Two threads: each DCAP verification costs a few ms.
    let c = coll(V4_COLL);
    let halves = [0..V4.len() / 2, V4.len() / 2..V4.len()];
    std::thread::scope(|s| {
        for range in halves {
            let c = &c;
            s.spawn(move || {
                for i in range {
                    let mut bad = V4.to_vec();
                    bad[i] ^= 1 << (i % 8);
                    let r = tdx::verify_quote(&bad, c, V4_AT);
                    assert!(r.is_err(), "flip at byte {i} accepted");
                }
            });
        }
    });
}

#[test]
fn production_policy_refuses_sim_and_needs_collateral() {
    let sim = crate::sim::build_quote(&crate::Measurements::for_label("x"), &[0; 64]).unwrap();
    let err = verify_quote(&sim, &production(V4_COLL), SystemTime::now()).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::EvidenceKindNotAllowed {
                kind: EvidenceKind::Sim
            }
        ),
        "{err}"
    );
    let dev = Policy {
        allow_sim: true,
        ..Policy::default()
    };
    verify_quote(&sim, &dev, SystemTime::now()).unwrap();
    // No collateral source: real quotes cannot be verified.
    let err = verify_quote(V4, &Policy::default(), at(V4_AT)).unwrap_err();
    assert!(matches!(err, AttestError::NoCollateral), "{err}");
    // A pinned root set without Intel's root refuses real quotes.
    let pinned = Policy {
        pinned_root_ids: [crate::sim::sim_root_id()].into(),
        ..production(V4_COLL)
    };
    let err = verify_quote(V4, &pinned, at(V4_AT)).unwrap_err();
    assert!(matches!(err, AttestError::UntrustedRoot { .. }), "{err}");
    // Allowlists apply to real quotes too.
    let wrong_image = Policy {
        allowed_image_hashes: Some([[0; 32]].into()),
        ..production(V4_COLL)
    };
    let err = verify_quote(V4, &wrong_image, at(V4_AT)).unwrap_err();
    assert!(
        matches!(err, AttestError::ImageHashNotAllowed { .. }),
        "{err}"
    );
}

#[test]
fn verification_cache_is_bounded_by_collateral_expiry() {
    let verifier = TdxVerifier::new(Arc::new(FileCollateral::from_collateral(coll(V4_COLL))));
    verifier.verify(V4, V4_AT).unwrap();
    assert_eq!(verifier.cached(), 1);
    let again = verifier.verify(V4, V4_AT + 10).unwrap();
    assert_eq!(again.tcb_status, "UpToDate");
    assert_eq!(verifier.cached(), 1);
    // Past the collateral window the cached success is not reused.
    let (_, hi) = collateral_window(&coll(V4_COLL)).unwrap();
    let err = verifier.verify(V4, hi + 1).unwrap_err();
    assert!(
        matches!(err, AttestError::CollateralExpired { .. }),
        "{err}"
    );
    // Failures are not cached.
    assert!(verifier.verify(OUTDATED, V4_AT).is_err());
    assert_eq!(verifier.cached(), 1);
}

#[test]
fn real_quote_lifted_into_a_certificate_is_refused() {
    // A certificate for OUR key carrying the real quote: its report data is not SHA-512 of our
    // claims, so the binding check refuses it (after full DCAP verification passed).
    let key = new_key().unwrap();
    let claims = Claims::new(ed25519_public(&key).unwrap()).encode().unwrap();
    let mut params = cert_params(EvidenceKind::Tdx, Some(V4.to_vec()), claims);
    let t = time::OffsetDateTime::from_unix_timestamp(V4_AT as i64).unwrap();
    params.not_before = t - time::Duration::hours(1);
    params.not_after = t + time::Duration::hours(1);
    let der = params.self_signed(&key).unwrap().der().to_vec();
    let err = verify_certificate(&der, &production(V4_COLL), at(V4_AT)).unwrap_err();
    assert!(matches!(err, AttestError::ReportDataMismatch), "{err}");
    // Production policy without collateral: refused before the binding is even looked at.
    let err = verify_certificate(&der, &Policy::default(), at(V4_AT)).unwrap_err();
    assert!(matches!(err, AttestError::NoCollateral), "{err}");
}

#[test]
fn collateral_file_errors_are_clear() {
    let missing = std::path::Path::new("/nonexistent/collateral.json");
    let err = FileCollateral::load(missing).unwrap_err();
    assert!(
        matches!(err, AttestError::BadCollateral(ref m) if m.contains("collateral.json")),
        "{err}"
    );
    assert!(matches!(
        parse_collateral(b"{}"),
        Err(AttestError::BadCollateral(_))
    ));
}

#[test]
fn sim_certificates_use_the_same_path_and_policy() {
    let m = crate::Measurements::for_label("worker");
    let id = crate::Identity::generate(EvidenceKind::Sim, &m).unwrap();
    let now = SystemTime::now();
    // Production policy refuses sim evidence before any quote work.
    let err = verify_certificate(&id.cert_der(), &Policy::default(), now).unwrap_err();
    assert!(
        matches!(
            err,
            AttestError::EvidenceKindNotAllowed {
                kind: EvidenceKind::Sim
            }
        ),
        "{err}"
    );
    // Devnet policy: sim allowed, production checks otherwise (allowlists, pinned sim root).
    let devnet = Policy {
        allow_sim: true,
        allowed_image_hashes: Some([m.image_hash()].into()),
        allowed_mrtds: Some([m.mrtd].into()),
        pinned_root_ids: [crate::sim::sim_root_id()].into(),
        ..Policy::default()
    };
    let peer = verify_certificate(&id.cert_der(), &devnet, now).unwrap();
    assert_eq!(peer.measurements, Some(m));
    // Pinning only Intel's root refuses the devnet root even with sim allowed.
    let intel_only = Policy {
        pinned_root_ids: [tdx::intel_root_id().unwrap()].into(),
        ..devnet
    };
    let err = verify_certificate(&id.cert_der(), &intel_only, now).unwrap_err();
    assert!(matches!(err, AttestError::UntrustedRoot { .. }), "{err}");
}
