//! TD measurements and the image hash derived from them (DESIGN §5).

use sha2::{Digest, Sha256, Sha384};

/// The TD measurement registers that identify what code runs in the TEE. Report data is *not*
/// part of it: it changes with every key, the image does not.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Measurements {
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
}

impl Measurements {
    /// SHA-256(mrtd‖mrconfigid‖mrowner‖mrownerconfig‖rtmr0‖rtmr1‖rtmr2‖rtmr3): the key the
    /// registry lists allowed images under.
    pub fn image_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.mrtd);
        h.update(self.mrconfigid);
        h.update(self.mrowner);
        h.update(self.mrownerconfig);
        for r in &self.rtmr {
            h.update(r);
        }
        h.finalize().into()
    }

    /// Deterministic devnet measurements: each field = SHA-384(label ‖ 0x00 ‖ field name). The
    /// zero byte keeps ("ab", "c…") and ("a", "bc…") apart. Same label → same image hash, so a
    /// devnet registry can list e.g. `for_label("worker")`.
    pub fn for_label(label: &str) -> Self {
        let field = |name: &str| -> [u8; 48] {
            let mut h = Sha384::new();
            h.update(label.as_bytes());
            h.update([0u8]);
            h.update(name.as_bytes());
            h.finalize().into()
        };
        Measurements {
            mrtd: field("mrtd"),
            mrconfigid: field("mrconfigid"),
            mrowner: field("mrowner"),
            mrownerconfig: field("mrownerconfig"),
            rtmr: [
                field("rtmr0"),
                field("rtmr1"),
                field("rtmr2"),
                field("rtmr3"),
            ],
        }
    }
}

impl std::fmt::Debug for Measurements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measurements")
            .field("mrtd", &hex::encode(self.mrtd))
            .field("image_hash", &hex::encode(self.image_hash()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_label_is_deterministic_and_label_specific() {
        let a = Measurements::for_label("worker");
        assert_eq!(a, Measurements::for_label("worker"));
        assert_ne!(
            a.image_hash(),
            Measurements::for_label("proxy").image_hash()
        );
        // Fields differ from each other (field name is hashed in).
        assert_ne!(a.mrtd, a.mrconfigid);
        assert_ne!(a.rtmr[0], a.rtmr[3]);
    }

    #[test]
    fn image_hash_covers_every_register_in_order() {
        let base = Measurements::for_label("x");
        let h = base.image_hash();
        let mut edits: Vec<Measurements> = Vec::new();
        for i in 0..8 {
            let mut m = base;
            match i {
                0 => m.mrtd[0] ^= 1,
                1 => m.mrconfigid[47] ^= 1,
                2 => m.mrowner[5] ^= 1,
                3 => m.mrownerconfig[9] ^= 1,
                n => m.rtmr[n - 4][1] ^= 1,
            }
            edits.push(m);
        }
        for m in edits {
            assert_ne!(m.image_hash(), h);
        }
        // Swapping two registers changes the hash: order matters.
        let mut swapped = base;
        swapped.rtmr.swap(0, 1);
        assert_ne!(swapped.image_hash(), h);
        // Independent computation of the documented formula.
        let mut cat = Vec::new();
        for part in [base.mrtd, base.mrconfigid, base.mrowner, base.mrownerconfig] {
            cat.extend_from_slice(&part);
        }
        for r in base.rtmr {
            cat.extend_from_slice(&r);
        }
        assert_eq!(h, <[u8; 32]>::from(Sha256::digest(&cat)));
    }
}
