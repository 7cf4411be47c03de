//! Proxy state anchors (DESIGN §6, rollback resistance): every 30–60 s the proxy puts
//! (seqno, session hash) of its latest DB batch on chain, signed by its sealed key. A proxy
//! restarted from an older copy of its DB finds the chain's anchor ahead of its DB and
//! refuses to serve; vouchers are only ever signed for anchored state.
//!
//! Signed bytes (fixed layout, domain-separated from vouchers and DB records):
//!
//! ```text
//! "cocoon/anchor/v1\0" (17 bytes) ‖ proxy contract: 32 bytes ‖ seqno: u64 BE ‖ hash: 32 bytes
//! ```

use crate::address::{from_hex, to_hex, Address, PublicKey};
use crate::error::{LedgerError, Result};
use crate::signing::SignatureFormat;
use crate::voucher::Signature;
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const ANCHOR_DOMAIN: &[u8; 17] = b"cocoon/anchor/v1\0";
pub const ANCHOR_MESSAGE_LEN: usize = 17 + 32 + 8 + 32;

/// The SHA-256 chain over the proxy's DB batches (see the proxy's `store`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionHash(pub [u8; 32]);

crate::address::hex_newtype!(SessionHash, 32, "session hash");

/// An anchor as the proxy signs it and the proxy contract stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAnchor {
    pub proxy: Address,
    pub seqno: u64,
    pub session_hash: SessionHash,
    pub signature: Signature,
}

pub(crate) fn message(proxy: &Address, seqno: u64, hash: &SessionHash) -> [u8; ANCHOR_MESSAGE_LEN] {
    let mut m = [0u8; ANCHOR_MESSAGE_LEN];
    m[..17].copy_from_slice(ANCHOR_DOMAIN);
    m[17..49].copy_from_slice(&proxy.0);
    m[49..57].copy_from_slice(&seqno.to_be_bytes());
    m[57..].copy_from_slice(&hash.0);
    m
}

impl SignedAnchor {
    pub fn sign(
        key: &Ed25519KeyPair,
        proxy: Address,
        seqno: u64,
        session_hash: SessionHash,
    ) -> SignedAnchor {
        Self::sign_in(SignatureFormat::Ledger, key, proxy, seqno, session_hash)
    }

    /// Signs in the form a chain's contracts check (`Chain::signature_format`).
    pub fn sign_in(
        format: SignatureFormat,
        key: &Ed25519KeyPair,
        proxy: Address,
        seqno: u64,
        session_hash: SessionHash,
    ) -> SignedAnchor {
        let mut signature = [0u8; 64];
        let message = format.anchor_message(&proxy, seqno, &session_hash);
        signature.copy_from_slice(key.sign(&message).as_ref());
        SignedAnchor {
            proxy,
            seqno,
            session_hash,
            signature: Signature(signature),
        }
    }

    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        self.verify_in(SignatureFormat::Ledger, key)
    }

    pub fn verify_in(&self, format: SignatureFormat, key: &PublicKey) -> Result<()> {
        UnparsedPublicKey::new(&ED25519, &key.0)
            .verify(
                &format.anchor_message(&self.proxy, self.seqno, &self.session_hash),
                &self.signature.0,
            )
            .map_err(|_| LedgerError::BadSignature)
    }
}
