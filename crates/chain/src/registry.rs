//! The root registry: what the network allows (image hashes per role, models), which
//! proxies exist, and the prices (DESIGN §5, §6).

use crate::hexbytes;
use cocoon_ledger::RootParams;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Roles whose TEE images the registry allowlists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Proxy,
    Worker,
}

/// Who dials a proxy, which decides the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialer {
    Worker,
    Client,
}

/// A registered proxy: where clients and workers dial it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyEntry {
    pub name: String,
    /// `host:port` of the proxy's client listener.
    pub client_endpoint: String,
    /// `host:port` of the proxy's worker listener.
    pub worker_endpoint: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Registry {
    /// Bumped on every change.
    pub version: u64,
    pub params: RootParams,
    /// Allowed proxy image hashes; empty = any image.
    #[serde(with = "hexbytes::set")]
    pub proxy_image_hashes: BTreeSet<[u8; 32]>,
    /// Allowed worker image hashes; empty = any image.
    #[serde(with = "hexbytes::set")]
    pub worker_image_hashes: BTreeSet<[u8; 32]>,
    /// Allowed models: SHA-256 of the full model id `name@revision:weights_hash`.
    #[serde(with = "hexbytes::set")]
    pub model_hashes: BTreeSet<[u8; 32]>,
    pub proxies: Vec<ProxyEntry>,
    /// Whether simulated TEE evidence is acceptable (devnet only).
    pub allow_sim: bool,
    /// Whether peers without any evidence are acceptable (dev only).
    pub allow_none: bool,
    /// Minimum proof-of-work difficulty proxies demand before TLS.
    pub pow_difficulty: u8,
    /// Allowed TD MRTDs (48-byte hex), any role; empty = any.
    #[serde(with = "hex48::set", skip_serializing_if = "BTreeSet::is_empty")]
    pub mrtd_allowlist: BTreeSet<[u8; 48]>,
    /// Allowed RTMR0-3 sets (each 4 × 48-byte hex), any role; empty = any.
    #[serde(with = "hex48::rtmr_sets", skip_serializing_if = "BTreeSet::is_empty")]
    pub rtmr_allowlist: BTreeSet<[[u8; 48]; 4]>,
    /// Pinned quote root key ids (SHA-256 of the root's SPKI); empty = the built-in roots
    /// (Intel's, plus the devnet sim root when `allow_sim`).
    #[serde(with = "hexbytes::set", skip_serializing_if = "BTreeSet::is_empty")]
    pub pinned_root_ids: BTreeSet<[u8; 32]>,
    /// DCAP TCB statuses accepted besides `UpToDate` (e.g. `SWHardeningNeeded`).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub accepted_tcb_statuses: BTreeSet<String>,
}

/// Serde helpers for 48-byte TD measurement registers as hex.
mod hex48 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::collections::BTreeSet;

    fn parse48(s: &str) -> Result<[u8; 48], String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("bad hex {s:?}: {e}"))?;
        bytes
            .try_into()
            .map_err(|_| format!("expected 48 bytes (96 hex chars): {s:?}"))
    }

    pub mod set {
        use super::*;

        pub fn serialize<S: Serializer>(v: &BTreeSet<[u8; 48]>, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(hex::encode))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeSet<[u8; 48]>, D::Error> {
            let items = Vec::<String>::deserialize(d)?;
            items
                .iter()
                .map(|s| parse48(s).map_err(D::Error::custom))
                .collect()
        }
    }

    pub mod rtmr_sets {
        use super::*;

        pub fn serialize<S: Serializer>(
            v: &BTreeSet<[[u8; 48]; 4]>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|r| r.map(hex::encode)))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeSet<[[u8; 48]; 4]>, D::Error> {
            let items = Vec::<[String; 4]>::deserialize(d)?;
            items
                .iter()
                .map(|set| {
                    let mut out = [[0u8; 48]; 4];
                    for (slot, s) in out.iter_mut().zip(set) {
                        *slot = parse48(s).map_err(D::Error::custom)?;
                    }
                    Ok(out)
                })
                .collect()
        }
    }
}

/// Registry key of a model id (DESIGN §5).
pub fn model_hash(model_id: &str) -> [u8; 32] {
    Sha256::digest(model_id.as_bytes()).into()
}

impl Registry {
    pub fn image_hashes(&self, role: Role) -> &BTreeSet<[u8; 32]> {
        match role {
            Role::Proxy => &self.proxy_image_hashes,
            Role::Worker => &self.worker_image_hashes,
        }
    }

    /// Allowlist for a role in the form the attestation policy wants (None = any).
    pub fn image_allowlist(&self, role: Role) -> Option<BTreeSet<[u8; 32]>> {
        let set = self.image_hashes(role);
        (!set.is_empty()).then(|| set.clone())
    }

    /// Endpoints of every registered proxy's listener for `dialer`.
    pub fn proxy_endpoints(&self, dialer: Dialer) -> Vec<String> {
        self.proxies
            .iter()
            .map(|p| match dialer {
                Dialer::Worker => p.worker_endpoint.clone(),
                Dialer::Client => p.client_endpoint.clone(),
            })
            .collect()
    }

    pub fn has_model(&self, model_id: &str) -> bool {
        self.model_hashes.contains(&model_hash(model_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_roundtrip_uses_hex() {
        let mut r = Registry::default();
        r.model_hashes.insert(model_hash("m@1:abc"));
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(&hex::encode(model_hash("m@1:abc"))));
        let back: Registry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!(back.has_model("m@1:abc"));
        assert!(!back.has_model("m@1:abd"));
    }

    #[test]
    fn measurement_allowlists_roundtrip_and_default_empty() {
        let mut r = Registry::default();
        r.mrtd_allowlist.insert([7; 48]);
        r.rtmr_allowlist
            .insert([[1; 48], [2; 48], [3; 48], [4; 48]]);
        r.pinned_root_ids.insert([9; 32]);
        r.accepted_tcb_statuses.insert("SWHardeningNeeded".into());
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(&hex::encode([7u8; 48])));
        assert_eq!(serde_json::from_str::<Registry>(&text).unwrap(), r);
        // Older registry files without the new fields still load.
        let old: Registry = serde_json::from_str(r#"{"version":3}"#).unwrap();
        assert!(old.mrtd_allowlist.is_empty() && old.pinned_root_ids.is_empty());
        assert!(!serde_json::to_string(&old)
            .unwrap()
            .contains("mrtd_allowlist"));
        let err = serde_json::from_str::<Registry>(r#"{"mrtd_allowlist":["00"]}"#).unwrap_err();
        assert!(err.to_string().contains("48 bytes"), "{err}");
    }

    #[test]
    fn bad_hash_is_a_clear_error() {
        let err = serde_json::from_str::<Registry>(r#"{"model_hashes":["zz"]}"#).unwrap_err();
        assert!(err.to_string().contains("bad hex"), "{err}");
    }
}
