//! Proxy-signed vouchers: "contract X may settle up to N cumulative adjusted tokens".
//!
//! The signed bytes are a fixed-layout, domain-separated encoding:
//!
//! ```text
//! "cocoon/voucher/v1\0" (18 bytes) ‖ op: u32 BE ‖ contract: 32 bytes ‖ cumulative: u64 BE
//! ```
//!
//! The domain tag keeps a voucher signature from ever being valid as any other message the
//! proxy key signs (TLS handshakes, DB records, anchors). The op keeps a charge voucher from
//! being submitted as a payout or a refund grant. The contract address binds it to one
//! client/worker contract of one proxy. Values are cumulative, so a lost or reordered
//! voucher costs nothing: the newest supersedes every older one, and contracts accept only
//! increases.

use crate::address::{from_hex, to_hex, Address, PublicKey};
use crate::error::{LedgerError, Result};
use crate::signing::SignatureFormat;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const VOUCHER_DOMAIN: &[u8; 18] = b"cocoon/voucher/v1\0";
/// Length of the signed message.
pub const VOUCHER_MESSAGE_LEN: usize = 18 + 4 + 32 + 8;

/// What a voucher authorises. The codes are part of the signed bytes: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoucherOp {
    /// Charge a client contract up to `cumulative` tokens.
    ClientCharge,
    /// Charge a client contract up to `cumulative` tokens, then close it and refund the rest
    /// (the proxy's cooperative close; used when a client closes or the proxy shuts down).
    ClientGrantRefund,
    /// Pay a worker contract up to `cumulative` tokens.
    WorkerPayout,
    /// Pay a worker contract up to `cumulative` tokens, then close it.
    WorkerLastPayout,
}

impl VoucherOp {
    pub const fn code(self) -> u32 {
        match self {
            VoucherOp::ClientCharge => 0x636c_6301,
            VoucherOp::ClientGrantRefund => 0x636c_6302,
            VoucherOp::WorkerPayout => 0x776b_7201,
            VoucherOp::WorkerLastPayout => 0x776b_7202,
        }
    }

    pub fn from_code(code: u32) -> Result<VoucherOp> {
        [
            VoucherOp::ClientCharge,
            VoucherOp::ClientGrantRefund,
            VoucherOp::WorkerPayout,
            VoucherOp::WorkerLastPayout,
        ]
        .into_iter()
        .find(|op| op.code() == code)
        .ok_or(LedgerError::UnknownVoucherOp(code))
    }

    /// Closing ops may repeat the last accepted count (closing with nothing new owed);
    /// ordinary settlement must strictly increase it.
    pub const fn closes(self) -> bool {
        matches!(
            self,
            VoucherOp::ClientGrantRefund | VoucherOp::WorkerLastPayout
        )
    }
}

/// An unsigned voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Voucher {
    pub op: VoucherOp,
    pub contract: Address,
    pub cumulative: u64,
}

impl Voucher {
    pub fn new(op: VoucherOp, contract: Address, cumulative: u64) -> Voucher {
        Voucher {
            op,
            contract,
            cumulative,
        }
    }

    /// The exact bytes that are signed.
    pub fn message(&self) -> [u8; VOUCHER_MESSAGE_LEN] {
        let mut m = [0u8; VOUCHER_MESSAGE_LEN];
        m[..18].copy_from_slice(VOUCHER_DOMAIN);
        m[18..22].copy_from_slice(&self.op.code().to_be_bytes());
        m[22..54].copy_from_slice(&self.contract.0);
        m[54..].copy_from_slice(&self.cumulative.to_be_bytes());
        m
    }

    pub fn sign(&self, key: &Ed25519KeyPair) -> SignedVoucher {
        self.sign_in(SignatureFormat::Ledger, key)
    }

    /// Signs in the form a chain's contracts check (`Chain::signature_format`).
    pub fn sign_in(&self, format: SignatureFormat, key: &Ed25519KeyPair) -> SignedVoucher {
        let mut signature = [0u8; 64];
        signature.copy_from_slice(key.sign(&format.voucher_message(self)).as_ref());
        SignedVoucher {
            op: self.op,
            contract: self.contract,
            cumulative: self.cumulative,
            signature: Signature(signature),
        }
    }
}

/// An Ed25519 signature, serialised as hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}…)", &to_hex(&self.0)[..8])
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        from_hex::<64>(&s, "signature")
            .map(Signature)
            .map_err(serde::de::Error::custom)
    }
}

/// A voucher with the proxy's signature, as it travels to the holder and to the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVoucher {
    pub op: VoucherOp,
    pub contract: Address,
    pub cumulative: u64,
    pub signature: Signature,
}

impl SignedVoucher {
    pub fn voucher(&self) -> Voucher {
        Voucher::new(self.op, self.contract, self.cumulative)
    }

    /// Checks the signature only.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        self.verify_in(SignatureFormat::Ledger, key)
    }

    /// Checks the signature as a chain in `format` would.
    pub fn verify_in(&self, format: SignatureFormat, key: &PublicKey) -> Result<()> {
        UnparsedPublicKey::new(&ED25519, &key.0)
            .verify(&format.voucher_message(&self.voucher()), &self.signature.0)
            .map_err(|_| LedgerError::BadSignature)
    }

    /// Everything a contract checks before acting: op, own address, signature, and that the
    /// count moves forward past `current`. Returns the increase in tokens (0 only for a
    /// closing op that repeats `current`). Cheap checks first, so a misdirected voucher
    /// gets the precise error rather than a generic signature failure.
    pub fn check(
        &self,
        expected_op: VoucherOp,
        contract: &Address,
        key: &PublicKey,
        current: u64,
    ) -> Result<u64> {
        if self.op != expected_op {
            return Err(LedgerError::WrongVoucherOp {
                expected: expected_op,
                got: self.op,
            });
        }
        if self.contract != *contract {
            return Err(LedgerError::WrongContract {
                expected: *contract,
                got: self.contract,
            });
        }
        self.verify(key)?;
        let fresh = if self.op.closes() {
            self.cumulative >= current
        } else {
            self.cumulative > current
        };
        if !fresh {
            return Err(LedgerError::StaleVoucher {
                current,
                got: self.cumulative,
            });
        }
        Ok(self.cumulative - current)
    }
}

/// A key pair from a 32-byte seed (the proxy derives its seed from the sealed TEE key).
pub fn keypair_from_seed(seed: &[u8; 32]) -> Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| LedgerError::BadKey)
}

/// The public half of a key pair, in the form contracts store.
pub fn public_key(key: &Ed25519KeyPair) -> PublicKey {
    let mut pk = [0u8; 32];
    pk.copy_from_slice(key.public_key().as_ref());
    PublicKey(pk)
}
