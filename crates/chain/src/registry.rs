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
    fn bad_hash_is_a_clear_error() {
        let err = serde_json::from_str::<Registry>(r#"{"model_hashes":["zz"]}"#).unwrap_err();
        assert!(err.to_string().contains("bad hex"), "{err}");
    }
}
