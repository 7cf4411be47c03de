//! Addresses and keys. An address is 32 bytes, shown and serialised as lowercase hex.
//! Contract addresses are derived from what identifies the contract (as TON derives them
//! from the state init), so a voucher bound to one address can never be replayed on another
//! client, worker, proxy or price generation.

use crate::error::{LedgerError, Result};
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A wallet or contract address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 32]);

/// An Ed25519 public key (the proxy's voucher key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PublicKey(pub [u8; 32]);

/// Domain tag of address derivation: keeps these hashes apart from any other SHA-256 use.
const ADDRESS_DOMAIN: &[u8] = b"cocoon/address/v1\0";

impl Address {
    /// Derives an address from a kind and parts. Each part is length-prefixed so that
    /// ("ab", "c") and ("a", "bc") never collide.
    pub fn derive(kind: &str, parts: &[&[u8]]) -> Address {
        let mut ctx = Context::new(&SHA256);
        ctx.update(ADDRESS_DOMAIN);
        for part in std::iter::once(kind.as_bytes()).chain(parts.iter().copied()) {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Address(out)
    }

    /// A wallet address named by a string (devnet and tests; real wallets derive from keys).
    pub fn wallet(name: &str) -> Address {
        Address::derive("wallet", &[name.as_bytes()])
    }

    /// An owner as configs write it: 64 hex digits, or a devnet wallet name (anything else),
    /// which maps to `Address::wallet(name)`.
    pub fn parse_owner(s: &str) -> Address {
        Address::from_hex(s).unwrap_or_else(|_| Address::wallet(s))
    }

    /// The proxy contract of (owner, key) under one root-parameter generation.
    pub fn proxy_contract(owner: &Address, key: &PublicKey, params_version: u64) -> Address {
        Address::derive("proxy", &[&owner.0, &key.0, &params_version.to_be_bytes()])
    }

    /// The client contract of `owner` at `proxy`.
    pub fn client_contract(proxy: &Address, owner: &Address) -> Address {
        Address::derive("client", &[&proxy.0, &owner.0])
    }

    /// The worker contract of `owner` at `proxy`.
    pub fn worker_contract(proxy: &Address, owner: &Address) -> Address {
        Address::derive("worker", &[&proxy.0, &owner.0])
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

pub(crate) fn from_hex<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return Err(LedgerError::Malformed { what });
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(LedgerError::Malformed { what }),
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

macro_rules! hex_newtype {
    ($ty:ident, $n:expr, $what:expr) => {
        impl $ty {
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }
            pub fn from_hex(s: &str) -> Result<Self> {
                from_hex::<$n>(s, $what).map($ty)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl fmt::Debug for $ty {
            // Short form keeps error messages and test failures readable.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($ty), &self.to_hex()[..8])
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $ty::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use hex_newtype;

hex_newtype!(Address, 32, "address");
hex_newtype!(PublicKey, 32, "public key");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_serde() {
        let a = Address::wallet("alice");
        assert_eq!(Address::from_hex(&a.to_hex()).unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
        assert!(Address::from_hex("zz").is_err());
        assert!(Address::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn derivation_separates_kinds_and_parts() {
        let p = Address::wallet("p");
        let o = Address::wallet("o");
        assert_ne!(
            Address::client_contract(&p, &o),
            Address::worker_contract(&p, &o)
        );
        assert_ne!(
            Address::client_contract(&p, &o),
            Address::client_contract(&o, &p)
        );
        assert_ne!(
            Address::derive("x", &[b"ab", b"c"]),
            Address::derive("x", &[b"a", b"bc"])
        );
    }
}
