//! `sim` evidence: a software TEE. Quotes use the real TDX quote v4 layout ([`crate::quote`]),
//! carry the configured measurements, and are signed by an ECDSA P-256 attestation key whose
//! certificate chains to a *simulated* Intel root generated for the devnet (ECDSA P-256, rcgen).
//! The root's key is the public devnet key below, so every process of a devnet derives the same
//! root key id ([`sim_root_id`] = SHA-256 of the root SPKI) and a policy can pin it. Each process
//! generates its own attestation key and certificate on first use.
//!
//! Certification data type [`CERT_DATA_TYPE_SIM`] (0xFFFF) marks sim quotes, so a real TDX quote
//! is never mistaken for a sim one and vice versa. Its content is the chain, leaf first:
//! `(len u32 LE ‖ DER)` for the attestation key certificate, then for the root.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use sha2::{Digest, Sha256, Sha384};
use x509_parser::prelude::{FromDer, X509Certificate};

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

/// Public half of [`SIM_ROOT_PKCS8`] (x‖y): the devnet root's key.
pub const SIM_ROOT_PUBLIC_KEY: [u8; 64] = [
    0x67, 0xc0, 0x79, 0x65, 0x42, 0xd1, 0x9d, 0x5f, 0xf0, 0x20, 0xfe, 0xd4, 0x7e, 0x0b, 0xe3, 0xfa,
    0x58, 0xeb, 0xbc, 0xde, 0x16, 0x67, 0xee, 0x22, 0x7c, 0xfc, 0x50, 0xb4, 0x7f, 0x8c, 0xaa, 0xb8,
    0xcd, 0x49, 0x8f, 0x61, 0x48, 0x9a, 0x73, 0xc5, 0x3c, 0xf6, 0x30, 0x78, 0x1b, 0x19, 0x65, 0x36,
    0x65, 0xbd, 0x1a, 0xc4, 0x79, 0x12, 0xce, 0x2d, 0x02, 0xc5, 0xb5, 0x5d, 0xf0, 0x72, 0xbb, 0x46,
];

/// Most certificates accepted in a sim chain (leaf and root).
const SIM_CHAIN_LEN: usize = 2;

/// A simulated certification authority: root certificate and one attestation key certified by it.
pub(crate) struct SimCa {
    root_der: Vec<u8>,
    ak_cert_der: Vec<u8>,
    ak_pkcs8: Vec<u8>,
}

impl SimCa {
    /// Root from `root_pkcs8` (P-256), fresh attestation key, both valid 2020-2100.
    pub(crate) fn generate(root_pkcs8: &[u8]) -> Result<Self, AttestError> {
        let kg = |e: rcgen::Error| AttestError::KeyGen(format!("sim CA: {e}"));
        let root_key = rcgen::KeyPair::try_from(root_pkcs8).map_err(kg)?;
        let mut root = params("Cocoon devnet simulated Intel SGX root CA");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_der = root.self_signed(&root_key).map_err(kg)?.der().to_vec();
        let issuer = Issuer::new(root, root_key);

        let rng = SystemRandom::new();
        let ak = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| AttestError::KeyGen(format!("sim attestation key: {e}")))?;
        let ak_pkcs8 = ak.as_ref().to_vec();
        let ak_key = rcgen::KeyPair::try_from(ak_pkcs8.as_slice()).map_err(kg)?;
        let leaf = params("Cocoon devnet simulated attestation key");
        let ak_cert_der = leaf.signed_by(&ak_key, &issuer).map_err(kg)?.der().to_vec();
        Ok(SimCa {
            root_der,
            ak_cert_der,
            ak_pkcs8,
        })
    }

    fn cert_data(&self) -> Result<Vec<u8>, AttestError> {
        let mut out = Vec::new();
        for der in [&self.ak_cert_der, &self.root_der] {
            let len = u32::try_from(der.len())
                .map_err(|_| AttestError::KeyGen("sim certificate too long".into()))?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(der);
        }
        Ok(out)
    }
}

fn params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Cocoon devnet (INSECURE)");
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2100, 1, 1);
    p
}

/// This process's sim CA (root from the public devnet key), generated on first use.
fn devnet_ca() -> Result<&'static SimCa, AttestError> {
    static CA: OnceLock<Result<SimCa, String>> = OnceLock::new();
    CA.get_or_init(|| SimCa::generate(&SIM_ROOT_PKCS8).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| AttestError::KeyGen(e.clone()))
}

/// Root key id: SHA-256 of the certificate's DER SubjectPublicKeyInfo.
pub fn root_key_id(cert_der: &[u8]) -> Result<[u8; 32], AttestError> {
    crate::chain::key_id(cert_der)
}

/// Key id of the devnet sim root (the same in every process: the root key is fixed).
pub fn sim_root_id() -> [u8; 32] {
    // DER SPKI of a P-256 key: fixed prefix ‖ 0x04 ‖ x ‖ y.
    const PREFIX: [u8; 27] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    let mut h = Sha256::new();
    h.update(PREFIX);
    h.update(SIM_ROOT_PUBLIC_KEY);
    h.finalize().into()
}

/// Build a signed sim quote for `measurements` with the given report data.
pub fn build_quote(m: &Measurements, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    build_quote_with(devnet_ca()?, m, report_data)
}

/// Same as [`build_quote`] with another CA (tests: untrusted roots).
pub(crate) fn build_quote_with(
    ca: &SimCa,
    m: &Measurements,
    report_data: &[u8; 64],
) -> Result<Vec<u8>, AttestError> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ca.ak_pkcs8, &rng)
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
        cert_data: ca.cert_data()?,
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

/// Split the sim certification data into DER certificates (leaf first).
fn split_chain(mut data: &[u8]) -> Result<Vec<&[u8]>, AttestError> {
    let mut certs = Vec::new();
    while !data.is_empty() {
        if certs.len() == SIM_CHAIN_LEN {
            return Err(AttestError::BadCertChain("more than 2 certificates".into()));
        }
        let (len, rest) = data
            .split_first_chunk::<4>()
            .ok_or_else(|| AttestError::BadCertChain("truncated length".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(AttestError::BadCertChain("truncated certificate".into()));
        }
        let (der, rest) = rest.split_at(len);
        certs.push(der);
        data = rest;
    }
    if certs.len() != SIM_CHAIN_LEN {
        return Err(AttestError::BadCertChain(format!(
            "{} certificates, expected attestation key and root",
            certs.len()
        )));
    }
    Ok(certs)
}

/// Verify a sim quote: strict parse, sim certification data, the chain up to a root whose key id
/// is in `pinned_roots` (self-signed CA root, leaf signed by it, both valid at `now_secs`), the
/// attestation key = the leaf's key, then the ECDSA signature over header‖body. Returns the
/// parsed quote; the caller checks report data.
pub fn verify_quote(
    raw: &[u8],
    pinned_roots: &BTreeSet<[u8; 32]>,
    now_secs: u64,
) -> Result<QuoteV4, AttestError> {
    let quote = QuoteV4::parse(raw)?;
    if quote.cert_data_type != CERT_DATA_TYPE_SIM {
        return Err(AttestError::quote(format!(
            "certification data type {:#x} is not a sim quote",
            quote.cert_data_type
        )));
    }
    let chain = split_chain(&quote.cert_data)?;
    let root_id = crate::chain::verify_chain(&chain, now_secs)?;
    if !pinned_roots.contains(&root_id) {
        return Err(AttestError::UntrustedRoot {
            id: hex::encode(root_id),
        });
    }
    let (_, leaf) = X509Certificate::from_der(chain[0])
        .map_err(|e| AttestError::BadCertChain(format!("attestation key certificate: {e}")))?;
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..].copy_from_slice(&quote.attestation_key);
    if leaf.public_key().subject_public_key.data.as_ref() != point {
        return Err(AttestError::UntrustedAttestationKey);
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(&quote.signed_message(), &quote.signature)
        .map_err(|_| AttestError::BadSignature)?;
    Ok(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        1_800_000_000
    }

    fn pinned() -> BTreeSet<[u8; 32]> {
        [sim_root_id()].into()
    }

    #[test]
    fn pinned_public_key_matches_embedded_private_key() {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SIM_ROOT_PKCS8, &rng)
            .unwrap();
        assert_eq!(&key.public_key().as_ref()[1..], &SIM_ROOT_PUBLIC_KEY[..]);
        // The generated root certificate carries that key: same id however it was generated.
        assert_eq!(
            root_key_id(&devnet_ca().unwrap().root_der).unwrap(),
            sim_root_id()
        );
    }

    #[test]
    fn build_then_verify() {
        let m = Measurements::for_label("sim");
        let raw = build_quote(&m, &[5; 64]).unwrap();
        let q = verify_quote(&raw, &pinned(), now()).unwrap();
        assert_eq!(q.body.report_data, [5; 64]);
        assert_eq!(q.body.measurements(), m);
        // Outside the chain's validity.
        let err = verify_quote(&raw, &pinned(), 5_000_000_000).unwrap_err();
        assert!(matches!(err, AttestError::BadCertChain(_)), "{err}");
    }

    #[test]
    fn other_root_is_untrusted_unless_pinned() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let rogue = SimCa::generate(doc.as_ref()).unwrap();
        let raw = build_quote_with(&rogue, &Measurements::for_label("x"), &[0; 64]).unwrap();
        assert!(matches!(
            verify_quote(&raw, &pinned(), now()),
            Err(AttestError::UntrustedRoot { .. })
        ));
        let rogue_id = root_key_id(&rogue.root_der).unwrap();
        verify_quote(&raw, &[rogue_id].into(), now()).unwrap();
        // An empty pin set trusts nothing.
        assert!(verify_quote(&raw, &BTreeSet::new(), now()).is_err());
    }

    #[test]
    fn tampering_is_refused() {
        let raw = build_quote(&Measurements::for_label("x"), &[0; 64]).unwrap();
        let q = QuoteV4::parse(&raw).unwrap();
        let mut bad = q.clone();
        bad.cert_data_type = 6;
        let err = verify_quote(&bad.encode().unwrap(), &pinned(), now()).unwrap_err();
        assert!(
            matches!(err, AttestError::BadQuote(ref m) if m.contains("not a sim")),
            "{err}"
        );
        // Attestation key that is not the certified one.
        let mut bad = q.clone();
        bad.attestation_key[3] ^= 1;
        assert!(matches!(
            verify_quote(&bad.encode().unwrap(), &pinned(), now()),
            Err(AttestError::UntrustedAttestationKey)
        ));
        // Body edited after signing.
        let mut bad = q.clone();
        bad.body.mrtd[0] ^= 1;
        assert!(matches!(
            verify_quote(&bad.encode().unwrap(), &pinned(), now()),
            Err(AttestError::BadSignature)
        ));
        // Every single-bit flip anywhere is refused and nothing panics.
        for i in (0..raw.len()).step_by(7) {
            let mut flipped = raw.clone();
            flipped[i] ^= 0x10;
            assert!(
                verify_quote(&flipped, &pinned(), now()).is_err(),
                "flip at {i}/{}: {}",
                raw.len(),
                hex::encode(&raw[i.saturating_sub(16)..(i + 8).min(raw.len())])
            );
        }
    }
}
