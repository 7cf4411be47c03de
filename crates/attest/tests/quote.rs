//! Sim quote verification against tampering, truncation and garbage.

use cocoon_attest::quote::QuoteV4;
use cocoon_attest::{sim, AttestError, Measurements, MAX_QUOTE_LEN};
use rand::{Rng, SeedableRng};

/// Verify at a time inside the sim chain's validity, pinning the devnet root.
fn verify(raw: &[u8]) -> Result<QuoteV4, AttestError> {
    sim::verify_quote(raw, &[sim::sim_root_id()].into(), 1_800_000_000)
}

fn quote() -> Vec<u8> {
    sim::build_quote(&Measurements::for_label("quote-test"), &[0x5a; 64]).unwrap()
}

/// What flipping a bit at `off` must produce, by region of the v4 layout.
fn expected(off: usize) -> fn(&AttestError) -> bool {
    match off {
        0..=7 => |e| matches!(e, AttestError::BadQuote(_)), // version, key type, tee type
        8..=47 => |e| matches!(e, AttestError::BadSignature), // svns, vendor id, user data
        48..=631 => |e| matches!(e, AttestError::BadSignature), // TD report incl. report data
        632..=635 => |e| matches!(e, AttestError::BadQuote(_)), // signature data length
        636..=699 => |e| matches!(e, AttestError::BadSignature), // ECDSA signature
        700..=763 => |e| matches!(e, AttestError::UntrustedAttestationKey), // attestation key
        764..=769 => |e| matches!(e, AttestError::BadQuote(_)), // cert data type and length
        // The certificate chain: malformed, bad signature, or another root.
        _ => |e| {
            matches!(
                e,
                AttestError::BadCertChain(_) | AttestError::UntrustedRoot { .. }
            )
        },
    }
}

#[test]
fn genuine_quote_verifies_and_carries_inputs() {
    let q = verify(&quote()).unwrap();
    assert_eq!(q.body.report_data, [0x5a; 64]);
    assert_eq!(q.body.measurements(), Measurements::for_label("quote-test"));
    assert_eq!(q.cert_data_type, sim::CERT_DATA_TYPE_SIM);
}

#[test]
fn every_single_bit_flip_is_refused_precisely() {
    let raw = quote();
    assert!(raw.len() > 770, "sim quotes carry a certificate chain");
    for off in 0..raw.len() {
        for bit in [0u8, 7] {
            let mut bad = raw.clone();
            bad[off] ^= 1 << bit;
            let err = verify(&bad).unwrap_err();
            assert!(
                expected(off)(&err),
                "offset {off} bit {bit}: unexpected {err}"
            );
        }
    }
}

#[test]
fn named_fields_flipped() {
    let raw = quote();
    // header version, mrtd, rtmr3, report data, signature r, signature s
    for (off, name) in [
        (0, "version"),
        (184, "mrtd"),
        (520, "rtmr3"),
        (568, "report data"),
        (636, "sig r"),
        (699, "sig s"),
    ] {
        let mut bad = raw.clone();
        bad[off] ^= 0x80;
        let err = verify(&bad).unwrap_err();
        assert!(expected(off)(&err), "{name}: {err}");
    }
}

#[test]
fn truncated_quotes_are_errors() {
    let raw = quote();
    for cut in 0..raw.len() {
        let err = verify(&raw[..cut]).unwrap_err();
        assert!(
            matches!(err, AttestError::BadQuote(_)),
            "prefix {cut}: {err}"
        );
    }
    let mut longer = raw.clone();
    longer.extend_from_slice(&[0; 3]);
    assert!(matches!(verify(&longer), Err(AttestError::BadQuote(_))));
}

#[test]
fn garbage_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let raw = quote();
    for i in 0..2000 {
        let len = rng.gen_range(0..2000);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if i % 2 == 0 && junk.len() >= 8 {
            // Keep a valid header prefix so parsing goes deeper.
            junk[..8].copy_from_slice(&raw[..8]);
        }
        assert!(verify(&junk).is_err());
    }
    // A valid prefix with random lengths in the length fields.
    for _ in 0..500 {
        let mut bad = raw.clone();
        let v: u32 = rng.gen();
        let at = if rng.gen() { 632 } else { 766 };
        bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
        assert!(verify(&bad).is_err());
    }
}

#[test]
fn oversized_quote_refused() {
    let mut q = QuoteV4::parse(&quote()).unwrap();
    q.cert_data = vec![0; MAX_QUOTE_LEN];
    assert!(q.encode().is_err());
    let mut big = quote();
    big.resize(MAX_QUOTE_LEN + 1, 0);
    assert!(matches!(verify(&big), Err(AttestError::BadQuote(_))));
}
