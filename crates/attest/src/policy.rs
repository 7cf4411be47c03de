//! What evidence a node accepts from its peers. Read on every handshake so that registry updates
//! (new allowed image hashes) apply to the next connection without restarting anything.

use std::collections::BTreeSet;
use std::sync::RwLock;

use crate::{AttestError, EvidenceKind, PeerIdentity};

/// Acceptance policy for peer evidence.
///
/// * `allow_none` / `allow_sim` gate the evidence kinds; production sets both to `false`.
/// * `allowed_image_hashes`: `None` accepts any measured image; `Some(set)` only those. It applies
///   to evidence that measures an image (`sim`, later `tdx`). `none` evidence has no measurements
///   at all and is governed by `allow_none` alone: enabling `none` is the explicit opt-out of
///   attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub allow_none: bool,
    pub allow_sim: bool,
    pub allowed_image_hashes: Option<BTreeSet<[u8; 32]>>,
}

impl Policy {
    /// Development policy: every kind, any image.
    pub fn allow_all() -> Self {
        Policy {
            allow_none: true,
            allow_sim: true,
            allowed_image_hashes: None,
        }
    }

    /// Accept only `sim` evidence whose image hash is in `hashes`.
    pub fn sim_with_images(hashes: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Policy {
            allow_none: false,
            allow_sim: true,
            allowed_image_hashes: Some(hashes.into_iter().collect()),
        }
    }

    /// Is this evidence kind accepted at all? Checked before any expensive quote work.
    pub fn check_kind(&self, kind: EvidenceKind) -> Result<(), AttestError> {
        let allowed = match kind {
            EvidenceKind::None => self.allow_none,
            EvidenceKind::Sim => self.allow_sim,
        };
        if allowed {
            Ok(())
        } else {
            Err(AttestError::EvidenceKindNotAllowed { kind })
        }
    }

    /// Full policy decision on already-verified evidence.
    pub fn check(&self, peer: &PeerIdentity) -> Result<(), AttestError> {
        self.check_kind(peer.kind)?;
        match (&self.allowed_image_hashes, peer.image_hash) {
            (Some(set), Some(hash)) if !set.contains(&hash) => {
                Err(AttestError::ImageHashNotAllowed {
                    hash: hex::encode(hash),
                })
            }
            // A measured kind must always carry a hash; a missing one is a bug, refuse it.
            (_, None) if peer.kind != EvidenceKind::None => {
                Err(AttestError::MissingEvidence("image hash"))
            }
            _ => Ok(()),
        }
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
        }
    }

    #[test]
    fn kinds_are_gated() {
        let p = Policy {
            allow_none: false,
            allow_sim: true,
            allowed_image_hashes: None,
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
            allow_sim: false,
            allowed_image_hashes: None,
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
    fn shared_policy_changes_are_visible() {
        let s = SharedPolicy::new(Policy::allow_all());
        assert!(s.current().allow_none);
        s.set(Policy::sim_with_images([]));
        assert!(!s.current().allow_none);
    }
}
