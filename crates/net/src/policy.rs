//! Attestation policy read from the registry on every handshake, so allowlist changes on
//! the chain take effect for new connections without a restart.

use cocoon_attest::{Policy, PolicySource};
use cocoon_chain::{Chain, Role};
use std::sync::Arc;

/// Policy for peers of one TEE role (proxy or worker), straight from the registry.
#[derive(Debug, Clone)]
pub struct RegistryPolicy {
    chain: Arc<dyn Chain>,
    role: Role,
}

impl RegistryPolicy {
    pub fn shared(chain: Arc<dyn Chain>, role: Role) -> Arc<dyn PolicySource> {
        Arc::new(RegistryPolicy { chain, role })
    }
}

impl PolicySource for RegistryPolicy {
    fn current(&self) -> Policy {
        let registry = self.chain.registry();
        Policy {
            allow_none: registry.allow_none,
            allow_sim: registry.allow_sim,
            allowed_image_hashes: registry.image_allowlist(self.role),
        }
    }
}

/// Policy for app-side clients, which run outside TEEs: any evidence kind and image is
/// acceptable, but the certificate's key binding is still verified.
pub fn client_peer_policy() -> Arc<dyn PolicySource> {
    Arc::new(Policy {
        allow_none: true,
        allow_sim: true,
        allowed_image_hashes: None,
    })
}
