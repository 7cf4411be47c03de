//! Certificate chains inside quotes (sim: attestation key → devnet root; tdx: PCK → Intel CA →
//! Intel root), verified strictly: every certificate parses as exact DER, is signed by the next
//! one, is valid at the verification time; the last one is a self-signed CA. The unsigned parts
//! of each certificate (outer algorithm, signature BIT STRING header) must be canonical, so no
//! bit of a chain is left unchecked. Returns the root key id (SHA-256 of the root's SPKI) for
//! the caller to compare with the pinned roots.

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::AttestError;

/// Most certificates we accept in one chain.
pub const MAX_CHAIN_LEN: usize = 4;

/// DER AlgorithmIdentifier { ecdsa-with-SHA256 } (1.2.840.10045.4.3.2, no parameters).
const ECDSA_SHA256_ALG: [u8; 12] = [
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

fn bad(msg: impl Into<String>) -> AttestError {
    AttestError::BadCertChain(msg.into())
}

fn parse(der: &[u8], i: usize) -> Result<X509Certificate<'_>, AttestError> {
    let cert = match X509Certificate::from_der(der) {
        Ok(([], cert)) => cert,
        Ok(_) => return Err(bad(format!("certificate {i}: trailing bytes"))),
        Err(e) => return Err(bad(format!("certificate {i}: DER: {e}"))),
    };
    // Only ECDSA-SHA256 chains (Intel's and ours), and the unsigned tail after the signed TBS
    // must be byte-exact: AlgorithmIdentifier(ecdsa-with-SHA256) ‖ BIT STRING with 0 unused bits.
    // (The DER parser tolerates some tag changes there; comparing bytes tolerates none.)
    let tbs = cert.tbs_certificate.as_ref();
    let tail = (tbs.as_ptr() as usize)
        .checked_sub(der.as_ptr() as usize)
        .and_then(|off| der.get(off + tbs.len()..))
        .ok_or_else(|| bad(format!("certificate {i}: layout")))?;
    let canonical = der.first() == Some(&0x30)
        && tail.starts_with(&ECDSA_SHA256_ALG)
        && tail.get(ECDSA_SHA256_ALG.len()) == Some(&0x03)
        && cert.signature_value.unused_bits == 0
        && cert.signature_algorithm == cert.tbs_certificate.signature;
    if !canonical {
        return Err(bad(format!(
            "certificate {i}: not a canonical ECDSA-SHA256 certificate"
        )));
    }
    Ok(cert)
}

/// Verify `ders` (leaf first, root last) at `now_secs`; returns the root key id.
pub fn verify_chain(ders: &[&[u8]], now_secs: u64) -> Result<[u8; 32], AttestError> {
    if ders.is_empty() || ders.len() > MAX_CHAIN_LEN {
        return Err(bad(format!("{} certificates", ders.len())));
    }
    let certs = ders
        .iter()
        .enumerate()
        .map(|(i, d)| parse(d, i))
        .collect::<Result<Vec<_>, _>>()?;
    let now = i64::try_from(now_secs).unwrap_or(i64::MAX);
    for (i, cert) in certs.iter().enumerate() {
        // The root (last) is self-signed.
        let issuer = certs.get(i + 1).unwrap_or(cert);
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|_| bad(format!("certificate {i}: signature does not verify")))?;
        if i > 0 && !cert.is_ca() {
            return Err(bad(format!("certificate {i}: issuer is not a CA")));
        }
        let v = cert.validity();
        if now < v.not_before.timestamp() || now > v.not_after.timestamp() {
            return Err(bad(format!("certificate {i}: not valid at {now_secs}")));
        }
    }
    let root = certs.last().ok_or_else(|| bad("empty chain"))?;
    if root.subject() != root.issuer() {
        return Err(bad("chain does not end in a self-signed root"));
    }
    Ok(Sha256::digest(root.public_key().raw).into())
}

/// Root key id of a lone root certificate.
pub fn key_id(cert_der: &[u8]) -> Result<[u8; 32], AttestError> {
    Ok(Sha256::digest(parse(cert_der, 0)?.public_key().raw).into())
}
