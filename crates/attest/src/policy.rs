//! What evidence a node accepts from its peers. Read on every handshake so that registry updates
//! (new allowed image hashes) apply to the next connection without restarting anything.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::tdx::TdxVerifier;
use crate::{AttestError, EvidenceKind, PeerIdentity};

/// Acceptance policy for peer evidence.
///
/// [`Policy::default()`] is the PRODUCTION policy: only `tdx` evidence, verified by DCAP up to
/// Intel's root with TCB status `UpToDate`, any image (no allowlists) — and since it has no
/// collateral source (`tdx: None`), it accepts nothing until one is set. Loosen it field by field:
///
/// * `allow_none` / `allow_sim` gate the dev-only evidence kinds (production: both `false`).
/// * `allowed_image_hashes`, `allowed_mrtds`, `allowed_rtmrs`: `None` accepts any value,
///   `Some(set)` only those. They apply to measured evidence (`sim`, `tdx`); `none` evidence has
///   no measurements and is governed by `allow_none` alone (the explicit opt-out).
/// * `pinned_root_ids`: key ids (SHA-256 of the root's SPKI) a quote's certificate chain may end
///   in. Empty = the built-in roots: Intel's root for `tdx`, plus the devnet sim root when
///   `allow_sim`. Non-empty = exactly those (so an untrusted cache cannot substitute a root).
/// * `accepted_tcb_statuses`: DCAP TCB statuses accepted besides `UpToDate`
///   (e.g. `SWHardeningNeeded`).
/// * `tdx`: the DCAP verifier (collateral source + verification cache) for `tdx` evidence.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub allow_none: bool,
    pub allow_sim: bool,
    pub allowed_image_hashes: Option<BTreeSet<[u8; 32]>>,
    pub allowed_mrtds: Option<BTreeSet<[u8; 48]>>,
    pub allowed_rtmrs: Option<BTreeSet<[[u8; 48]; 4]>>,
    pub pinned_root_ids: BTreeSet<[u8; 32]>,
    pub accepted_tcb_statuses: BTreeSet<String>,
    pub tdx: Option<Arc<TdxVerifier>>,
}

impl Policy {
    /// Development policy: every kind, any image.
    pub fn allow_all() -> Self {
        Policy {
            allow_none: true,
            allow_sim: true,
            ..Policy::default()
        }
    }

    /// Accept only `sim` evidence whose image hash is in `hashes`.
    pub fn sim_with_images(hashes: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Policy {
            allow_sim: true,
            allowed_image_hashes: Some(hashes.into_iter().collect()),
            ..Policy::default()
        }
    }

    /// Is this evidence kind accepted at all? Checked before any expensive quote work.
    pub fn check_kind(&self, kind: EvidenceKind) -> Result<(), AttestError> {
        let allowed = match kind {
            EvidenceKind::None => self.allow_none,
            EvidenceKind::Sim => self.allow_sim,
            EvidenceKind::Tdx => true,
        };
        if allowed {
            Ok(())
        } else {
            Err(AttestError::EvidenceKindNotAllowed { kind })
        }
    }

    /// Root key ids a quote of `kind` may chain to under this policy.
    pub fn effective_root_ids(
        &self,
        kind: EvidenceKind,
    ) -> Result<BTreeSet<[u8; 32]>, AttestError> {
        if !self.pinned_root_ids.is_empty() {
            return Ok(self.pinned_root_ids.clone());
        }
        Ok(match kind {
            EvidenceKind::None => BTreeSet::new(),
            EvidenceKind::Sim if self.allow_sim => [crate::sim::sim_root_id()].into(),
            EvidenceKind::Sim => BTreeSet::new(),
            EvidenceKind::Tdx => [crate::tdx::intel_root_id()?].into(),
        })
    }

    /// Full policy decision on already-verified evidence.
    pub fn check(&self, peer: &PeerIdentity) -> Result<(), AttestError> {
        self.check_kind(peer.kind)?;
        if peer.kind == EvidenceKind::None {
            return Ok(());
        }
        // A measured kind must always carry measurements; a missing one is a bug, refuse it.
        let (Some(hash), Some(m)) = (peer.image_hash, peer.measurements) else {
            return Err(AttestError::MissingEvidence("image hash"));
        };
        if self
            .allowed_image_hashes
            .as_ref()
            .is_some_and(|s| !s.contains(&hash))
        {
            return Err(AttestError::ImageHashNotAllowed {
                hash: hex::encode(hash),
            });
        }
        if self
            .allowed_mrtds
            .as_ref()
            .is_some_and(|s| !s.contains(&m.mrtd))
        {
            return Err(AttestError::MrtdNotAllowed {
                mrtd: hex::encode(m.mrtd),
            });
        }
        if self
            .allowed_rtmrs
            .as_ref()
            .is_some_and(|s| !s.contains(&m.rtmr))
        {
            return Err(AttestError::RtmrNotAllowed {
                rtmr0: hex::encode(m.rtmr[0]),
            });
        }
        Ok(())
    }
}

/// Where verifiers get the policy from. `current` is called on EVERY handshake.
pub trait PolicySource: Send + Sync + std::fmt::Debug {
    fn current(&self) -> Policy;
}

impl PolicySource for Policy {
    fn current(&self) -> Policy {
        self.clone()
    }
}

/// A policy that can be replaced at run time (e.g. when the chain registry changes).
#[derive(Debug)]
pub struct SharedPolicy(RwLock<Policy>);

impl SharedPolicy {
    pub fn new(policy: Policy) -> Self {
        SharedPolicy(RwLock::new(policy))
    }

    /// Replace the policy; connections handshaking after this call see the new one.
    pub fn set(&self, policy: Policy) {
        // A poisoned lock only means a writer panicked mid-assignment of a plain value; the
        // stored Policy is still a whole value, so keep going instead of propagating the panic.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }
}

impl PolicySource for SharedPolicy {
    fn current(&self) -> Policy {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(kind: EvidenceKind, image_hash: Option<[u8; 32]>) -> PeerIdentity {
        PeerIdentity {
            kind,
            public_key: [1; 32],
            image_hash,
            measurements: image_hash.map(|_| crate::Measurements::for_label("p")),
        }
    }

    #[test]
    fn kinds_are_gated() {
        let p = Policy {
            allow_sim: true,
            ..Policy::default()
        };
        assert!(matches!(
            p.check(&peer(EvidenceKind::None, None)),
            Err(AttestError::EvidenceKindNotAllowed {
                kind: EvidenceKind::None
            })
        ));
        p.check(&peer(EvidenceKind::Sim, Some([2; 32]))).unwrap();
        let p = Policy {
            allow_none: true,
            ..Policy::default()
        };
        assert!(matches!(
            p.check(&peer(EvidenceKind::Sim, Some([2; 32]))),
            Err(AttestError::EvidenceKindNotAllowed {
                kind: EvidenceKind::Sim
            })
        ));
        p.check(&peer(EvidenceKind::None, None)).unwrap();
    }

    #[test]
    fn allowlist_applies_to_measured_evidence() {
        let p = Policy::sim_with_images([[7; 32]]);
        p.check(&peer(EvidenceKind::Sim, Some([7; 32]))).unwrap();
        assert!(matches!(
            p.check(&peer(EvidenceKind::Sim, Some([8; 32]))),
            Err(AttestError::ImageHashNotAllowed { .. })
        ));
        assert!(matches!(
            p.check(&peer(EvidenceKind::Sim, None)),
            Err(AttestError::MissingEvidence(_))
        ));
    }

    #[test]
    fn default_is_production_strict() {
        let p = Policy::default();
        for kind in [EvidenceKind::None, EvidenceKind::Sim] {
            assert!(matches!(
                p.check_kind(kind),
                Err(AttestError::EvidenceKindNotAllowed { .. })
            ));
        }
        p.check_kind(EvidenceKind::Tdx).unwrap();
        assert!(p.tdx.is_none());
        // Built-in roots: the sim root only when sim is allowed.
        assert!(p.effective_root_ids(EvidenceKind::Sim).unwrap().is_empty());
        let intel = crate::tdx::intel_root_id().unwrap();
        assert_eq!(
            p.effective_root_ids(EvidenceKind::Tdx).unwrap(),
            [intel].into()
        );
        let dev = Policy::allow_all();
        assert_eq!(
            dev.effective_root_ids(EvidenceKind::Sim).unwrap(),
            [crate::sim::sim_root_id()].into()
        );
        let pinned = Policy {
            pinned_root_ids: [[9; 32]].into(),
            ..Policy::allow_all()
        };
        assert_eq!(
            pinned.effective_root_ids(EvidenceKind::Tdx).unwrap(),
            [[9; 32]].into()
        );
    }

    #[test]
    fn mrtd_and_rtmr_allowlists() {
        let m = crate::Measurements::for_label("p");
        let ok = peer(EvidenceKind::Sim, Some([2; 32]));
        let p = Policy {
            allowed_mrtds: Some([m.mrtd].into()),
            allowed_rtmrs: Some([m.rtmr].into()),
            ..Policy::allow_all()
        };
        p.check(&ok).unwrap();
        let p = Policy {
            allowed_mrtds: Some([[0; 48]].into()),
            ..Policy::allow_all()
        };
        assert!(matches!(
            p.check(&ok),
            Err(AttestError::MrtdNotAllowed { .. })
        ));
        let p = Policy {
            allowed_rtmrs: Some([[[0; 48]; 4]].into()),
            ..Policy::allow_all()
        };
        assert!(matches!(
            p.check(&ok),
            Err(AttestError::RtmrNotAllowed { .. })
        ));
    }

    #[test]
    fn shared_policy_changes_are_visible() {
        let s = SharedPolicy::new(Policy::allow_all());
        assert!(s.current().allow_none);
        s.set(Policy::sim_with_images([]));
        assert!(!s.current().allow_none);
    }
}
