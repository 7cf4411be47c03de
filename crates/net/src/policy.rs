//! Attestation policy read from the registry on every handshake, so allowlist changes on
//! the chain take effect for new connections without a restart.

use cocoon_attest::{Policy, PolicySource, TdxVerifier};
use cocoon_chain::{Chain, Role};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Policy for peers of one TEE role (proxy or worker), straight from the registry.
#[derive(Debug, Clone)]
pub struct RegistryPolicy {
    chain: Arc<dyn Chain>,
    role: Role,
    /// DCAP verifier (collateral source + cache) for `tdx` peers; `None` refuses `tdx` evidence.
    tdx: Option<Arc<TdxVerifier>>,
}

impl RegistryPolicy {
    pub fn shared(chain: Arc<dyn Chain>, role: Role) -> Arc<dyn PolicySource> {
        Self::with_tdx(chain, role, None)
    }

    /// Same, verifying `tdx` peers with `tdx` (its cache lives as long as this policy).
    pub fn with_tdx(
        chain: Arc<dyn Chain>,
        role: Role,
        tdx: Option<Arc<TdxVerifier>>,
    ) -> Arc<dyn PolicySource> {
        Arc::new(RegistryPolicy { chain, role, tdx })
    }
}

impl PolicySource for RegistryPolicy {
    fn current(&self) -> Policy {
        let registry = self.chain.registry();
        Policy {
            allow_none: registry.allow_none,
            allow_sim: registry.allow_sim,
            allowed_image_hashes: registry.image_allowlist(self.role),
            allowed_mrtds: nonempty(&registry.mrtd_allowlist),
            allowed_rtmrs: nonempty(&registry.rtmr_allowlist),
            pinned_root_ids: registry.pinned_root_ids.clone(),
            accepted_tcb_statuses: registry.accepted_tcb_statuses.clone(),
            tdx: self.tdx.clone(),
        }
    }
}

/// `None` for an empty registry list (= any value), the set otherwise.
fn nonempty<T: Clone + Ord>(set: &BTreeSet<T>) -> Option<BTreeSet<T>> {
    (!set.is_empty()).then(|| set.clone())
}

/// Policy for app-side clients, which run outside TEEs: any evidence kind and image is
/// acceptable, but the certificate's key binding is still verified.
pub fn client_peer_policy() -> Arc<dyn PolicySource> {
    Arc::new(Policy::allow_all())
}
