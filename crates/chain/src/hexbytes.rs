//! Serde helpers: 32-byte hashes as lowercase hex strings in JSON.

use serde::{de::Error, Deserialize, Deserializer, Serializer};
use std::collections::BTreeSet;

pub fn parse32(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s.trim()).map_err(|e| format!("bad hex {s:?}: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("expected 32 bytes (64 hex chars): {s:?}"))
}

pub mod set {
    use super::*;

    pub fn serialize<S: Serializer>(v: &BTreeSet<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<[u8; 32]>, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        items
            .iter()
            .map(|s| parse32(s).map_err(D::Error::custom))
            .collect()
    }
}
