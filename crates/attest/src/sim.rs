//! `sim` evidence: a software TEE. Quotes use the real TDX quote v4 layout ([`crate::quote`]),
//! carry the configured measurements, and are signed by the public devnet simulation root key
//! below. Certification data type [`CERT_DATA_TYPE_SIM`] (0xFFFF, empty) marks them, so a real
//! TDX quote is never mistaken for a sim one and vice versa.

use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use sha2::{Digest, Sha384};

use crate::quote::{
    QuoteHeader, QuoteV4, TdReport10, ATT_KEY_TYPE_ECDSA_P256, INTEL_QE_VENDOR_ID, QUOTE_VERSION_4,
    TEE_TYPE_TDX,
};
use crate::{AttestError, Measurements};

/// Certification data type of sim quotes (real quotes use 1..=7; 6 = QE report data).
pub const CERT_DATA_TYPE_SIM: u16 = 0xFFFF;

/// PKCS#8 (v1, ring format) of the devnet simulation attestation key (P-256).
///
/// PUBLIC AND INSECURE: this private key is in the source on purpose. Anyone can sign a `sim`
/// quote with it, so `sim` evidence proves nothing about the hardware; it exists so devnets and
/// tests exercise the same quote parsing, binding and policy code as real TDX. Production policy
/// must refuse `sim` (`Policy::allow_sim = false`).
const SIM_ROOT_PKCS8: [u8; 138] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20, 0x0a, 0x12, 0xd1, 0x3e, 0x60, 0xfb, 0x8e, 0x9e, 0xed, 0x75, 0x9a, 0xc5,
    0x87, 0xfd, 0x24, 0xc7, 0x45, 0x6e, 0x3a, 0x6f, 0x92, 0x40, 0x22, 0xf5, 0x22, 0x6c, 0x86, 0xe4,
    0x1a, 0x6c, 0xe2, 0x3e, 0xa1, 0x44, 0x03, 0x42, 0x00, 0x04, 0x67, 0xc0, 0x79, 0x65, 0x42, 0xd1,
    0x9d, 0x5f, 0xf0, 0x20, 0xfe, 0xd4, 0x7e, 0x0b, 0xe3, 0xfa, 0x58, 0xeb, 0xbc, 0xde, 0x16, 0x67,
    0xee, 0x22, 0x7c, 0xfc, 0x50, 0xb4, 0x7f, 0x8c, 0xaa, 0xb8, 0xcd, 0x49, 0x8f, 0x61, 0x48, 0x9a,
    0x73, 0xc5, 0x3c, 0xf6, 0x30, 0x78, 0x1b, 0x19, 0x65, 0x36, 0x65, 0xbd, 0x1a, 0xc4, 0x79, 0x12,
    0xce, 0x2d, 0x02, 0xc5, 0xb5, 0x5d, 0xf0, 0x72, 0xbb, 0x46,
];

/// Public half of [`SIM_ROOT_PKCS8`] (x‖y): the only key a `sim` quote may be signed with.
pub const SIM_ROOT_PUBLIC_KEY: [u8; 64] = [
    0x67, 0xc0, 0x79, 0x65, 0x42, 0xd1, 0x9d, 0x5f, 0xf0, 0x20, 0xfe, 0xd4, 0x7e, 0x0b, 0xe3, 0xfa,
    0x58, 0xeb, 0xbc, 0xde, 0x16, 0x67, 0xee, 0x22, 0x7c, 0xfc, 0x50, 0xb4, 0x7f, 0x8c, 0xaa, 0xb8,
    0xcd, 0x49, 0x8f, 0x61, 0x48, 0x9a, 0x73, 0xc5, 0x3c, 0xf6, 0x30, 0x78, 0x1b, 0x19, 0x65, 0x36,
    0x65, 0xbd, 0x1a, 0xc4, 0x79, 0x12, 0xce, 0x2d, 0x02, 0xc5, 0xb5, 0x5d, 0xf0, 0x72, 0xbb, 0x46,
];

/// Build a signed sim quote for `measurements` with the given report data.
pub fn build_quote(m: &Measurements, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    build_quote_signed_by(m, report_data, &SIM_ROOT_PKCS8)
}

/// Same as [`build_quote`] with another P-256 PKCS#8 key (tests: untrusted attestation key).
pub(crate) fn build_quote_signed_by(
    m: &Measurements,
    report_data: &[u8; 64],
    pkcs8: &[u8],
) -> Result<Vec<u8>, AttestError> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
        .map_err(|e| AttestError::KeyGen(format!("sim attestation key: {e}")))?;
    let mut quote = QuoteV4 {
        header: QuoteHeader {
            version: QUOTE_VERSION_4,
            att_key_type: ATT_KEY_TYPE_ECDSA_P256,
            tee_type: TEE_TYPE_TDX,
            qe_svn: 0,
            pce_svn: 0,
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            user_data: [0; 20],
        },
        body: sim_body(m, report_data),
        signature: [0; 64],
        attestation_key: [0; 64],
        cert_data_type: CERT_DATA_TYPE_SIM,
        cert_data: Vec::new(),
    };
    // ring's public key is the uncompressed point 0x04‖x‖y; the quote stores x‖y.
    let public = key.public_key().as_ref();
    let xy = public
        .get(1..65)
        .ok_or_else(|| AttestError::KeyGen("unexpected P-256 public key length".into()))?;
    quote.attestation_key.copy_from_slice(xy);
    let sig = key
        .sign(&rng, &quote.signed_message())
        .map_err(|e| AttestError::KeyGen(format!("sim quote signing: {e}")))?;
    if sig.as_ref().len() != 64 {
        return Err(AttestError::KeyGen(
            "unexpected ECDSA signature length".into(),
        ));
    }
    quote.signature.copy_from_slice(sig.as_ref());
    quote.encode()
}

/// The TD report a simulated TDX module would produce: fixed platform fields (a non-debug TD, a
/// typical XFAM, a recognizable fake MRSEAM), the configured measurements and the report data.
fn sim_body(m: &Measurements, report_data: &[u8; 64]) -> TdReport10 {
    TdReport10 {
        tee_tcb_svn: [0; 16],
        mrseam: Sha384::digest(b"cocoon sim tdx module").into(),
        mrsignerseam: [0; 48],
        seam_attributes: [0; 8],
        td_attributes: [0; 8],
        xfam: 0x0006_02e7u64.to_le_bytes(),
        mrtd: m.mrtd,
        mrconfigid: m.mrconfigid,
        mrowner: m.mrowner,
        mrownerconfig: m.mrownerconfig,
        rtmr: m.rtmr,
        report_data: *report_data,
    }
}

/// Verify a sim quote: strict parse, sim certification data, pinned attestation key, then the
/// ECDSA signature over header‖body. Returns the parsed quote; the caller checks report data.
pub fn verify_quote(raw: &[u8]) -> Result<QuoteV4, AttestError> {
    let quote = QuoteV4::parse(raw)?;
    if quote.cert_data_type != CERT_DATA_TYPE_SIM || !quote.cert_data.is_empty() {
        return Err(AttestError::quote(format!(
            "certification data type {:#x} is not a sim quote",
            quote.cert_data_type
        )));
    }
    // Pin the key before the signature check: a quote signed by any other key is untrusted
    // however valid its signature is.
    if quote.attestation_key != SIM_ROOT_PUBLIC_KEY {
        return Err(AttestError::UntrustedAttestationKey);
    }
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..].copy_from_slice(&quote.attestation_key);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(&quote.signed_message(), &quote.signature)
        .map_err(|_| AttestError::BadSignature)?;
    Ok(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_public_key_matches_embedded_private_key() {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SIM_ROOT_PKCS8, &rng)
            .unwrap();
        assert_eq!(&key.public_key().as_ref()[1..], &SIM_ROOT_PUBLIC_KEY[..]);
    }

    #[test]
    fn build_then_verify() {
        let m = Measurements::for_label("sim");
        let raw = build_quote(&m, &[5; 64]).unwrap();
        let q = verify_quote(&raw).unwrap();
        assert_eq!(q.body.report_data, [5; 64]);
        assert_eq!(q.body.measurements(), m);
    }

    #[test]
    fn other_attestation_key_is_untrusted() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let raw =
            build_quote_signed_by(&Measurements::for_label("x"), &[0; 64], doc.as_ref()).unwrap();
        assert!(matches!(
            verify_quote(&raw),
            Err(AttestError::UntrustedAttestationKey)
        ));
    }

    #[test]
    fn non_sim_cert_data_refused() {
        let raw = build_quote(&Measurements::for_label("x"), &[0; 64]).unwrap();
        let mut q = QuoteV4::parse(&raw).unwrap();
        q.cert_data_type = 6;
        let err = verify_quote(&q.encode().unwrap()).unwrap_err();
        assert!(
            matches!(err, AttestError::BadQuote(ref m) if m.contains("not a sim")),
            "{err}"
        );
    }
}
