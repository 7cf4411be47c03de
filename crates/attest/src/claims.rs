//! User claims bound into the quote: report_data = SHA-512(encoded claims).
//!
//! Encoding (deterministic, versioned):
//! ```text
//! version: u8 = 1
//! public_key: [u8; 32]            Ed25519 key of the certificate carrying these claims
//! field*: tag u8 ‖ len u16 LE ‖ value[len]   tags strictly increasing (no duplicates)
//! ```
//! Version 1 defines no optional fields yet; later ones (worker HPKE key, GPU evidence digest,
//! timestamp) get tags. Unknown tags are kept, not refused: they are covered by report_data, so
//! an old verifier can still check the binding of a newer peer's key.

use sha2::{Digest, Sha512};

use crate::AttestError;

/// Current claims version.
pub const CLAIMS_VERSION: u8 = 1;
/// Upper bound on an encoded claims blob (peer-controlled input).
pub const MAX_CLAIMS_LEN: usize = 4096;

/// Decoded claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub public_key: [u8; 32],
    /// Optional fields as (tag, value), tags strictly increasing.
    pub fields: Vec<(u8, Vec<u8>)>,
}

impl Claims {
    /// Claims binding only `public_key`.
    pub fn new(public_key: [u8; 32]) -> Self {
        Claims {
            public_key,
            fields: Vec::new(),
        }
    }

    /// Deterministic encoding. Fields are emitted sorted by tag; a value over u16::MAX bytes or a
    /// duplicate tag is a programming error on our side and is refused.
    pub fn encode(&self) -> Result<Vec<u8>, AttestError> {
        let mut out = Vec::with_capacity(33);
        out.push(CLAIMS_VERSION);
        out.extend_from_slice(&self.public_key);
        let mut fields: Vec<&(u8, Vec<u8>)> = self.fields.iter().collect();
        fields.sort_by_key(|(tag, _)| *tag);
        for pair in fields.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(AttestError::BadClaims(format!(
                    "duplicate tag {}",
                    pair[0].0
                )));
            }
        }
        for (tag, value) in fields {
            let len = u16::try_from(value.len())
                .map_err(|_| AttestError::BadClaims(format!("field {tag} too long")))?;
            out.push(*tag);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(value);
        }
        if out.len() > MAX_CLAIMS_LEN {
            return Err(AttestError::BadClaims(format!(
                "{} bytes > {MAX_CLAIMS_LEN}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Strict decoding of peer-supplied bytes; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, AttestError> {
        let bad = |m: String| AttestError::BadClaims(m);
        if bytes.len() > MAX_CLAIMS_LEN {
            return Err(bad(format!("{} bytes > {MAX_CLAIMS_LEN}", bytes.len())));
        }
        let (&version, rest) = bytes.split_first().ok_or_else(|| bad("empty".into()))?;
        if version != CLAIMS_VERSION {
            return Err(bad(format!("unsupported version {version}")));
        }
        let (key, mut rest) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| bad("truncated public key".into()))?;
        let mut fields: Vec<(u8, Vec<u8>)> = Vec::new();
        while let Some((&tag, after_tag)) = rest.split_first() {
            let (len, after_len) = after_tag
                .split_first_chunk::<2>()
                .ok_or_else(|| bad(format!("field {tag}: truncated length")))?;
            let len = usize::from(u16::from_le_bytes(*len));
            if after_len.len() < len {
                return Err(bad(format!("field {tag}: truncated value")));
            }
            if fields.last().is_some_and(|(prev, _)| *prev >= tag) {
                return Err(bad(format!("field {tag}: tags not strictly increasing")));
            }
            let (value, next) = after_len.split_at(len);
            fields.push((tag, value.to_vec()));
            rest = next;
        }
        Ok(Claims {
            public_key: *key,
            fields,
        })
    }
}

/// The quote report data for these encoded claims: SHA-512(claims).
pub fn report_data(encoded_claims: &[u8]) -> [u8; 64] {
    Sha512::digest(encoded_claims).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_layout() {
        let c = Claims::new([9; 32]);
        let enc = c.encode().unwrap();
        assert_eq!(enc.len(), 33);
        assert_eq!(enc[0], 1);
        assert_eq!(&enc[1..], &[9; 32]);
        assert_eq!(Claims::decode(&enc).unwrap(), c);

        let c = Claims {
            public_key: [3; 32],
            fields: vec![(5, vec![1, 2]), (2, vec![])],
        };
        let enc = c.encode().unwrap();
        assert_eq!(&enc[33..], &[2, 0, 0, 5, 2, 0, 1, 2]);
        let d = Claims::decode(&enc).unwrap();
        assert_eq!(d.fields, vec![(2, vec![]), (5, vec![1, 2])]);
    }

    #[test]
    fn rejects_malformed() {
        let good = Claims::new([1; 32]).encode().unwrap();
        for cut in 0..good.len() {
            assert!(
                Claims::decode(&good[..cut]).is_err(),
                "prefix {cut} accepted"
            );
        }
        let mut v2 = good.clone();
        v2[0] = 2;
        assert!(Claims::decode(&v2).is_err());
        let mut trunc = good.clone();
        trunc.extend_from_slice(&[4, 5, 0, 1]); // says 5 bytes, has 1
        assert!(Claims::decode(&trunc).is_err());
        let mut dup = good.clone();
        dup.extend_from_slice(&[4, 0, 0, 4, 0, 0]);
        assert!(Claims::decode(&dup).is_err());
        assert!(Claims::decode(&vec![1; MAX_CLAIMS_LEN + 1]).is_err());
        let dup = Claims {
            public_key: [0; 32],
            fields: vec![(1, vec![]), (1, vec![])],
        };
        assert!(dup.encode().is_err());
    }

    #[test]
    fn report_data_is_sha512() {
        let enc = Claims::new([1; 32]).encode().unwrap();
        let rd = report_data(&enc);
        assert_eq!(rd.to_vec(), Sha512::digest(&enc).to_vec());
        assert_ne!(rd, report_data(&Claims::new([2; 32]).encode().unwrap()));
    }
}
