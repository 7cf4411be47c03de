//! What exactly a proxy signs for a voucher or an anchor. The embedded chains check a
//! domain-separated byte string (see `voucher`/`anchor`); the TON contracts check Ed25519 over
//! the hash of a cell (`VoucherBody` and `AnchorBody` in `contracts/schema.tlb`). Both are
//! computed here, without I/O, so every node signs and verifies for the chain it runs on.

use crate::address::Address;
use crate::anchor::SessionHash;
use crate::voucher::Voucher;
use ring::digest::{digest, SHA256};

/// The form of the signed bytes a chain's contracts check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureFormat {
    /// The embedded chain's domain-separated byte strings.
    #[default]
    Ledger,
    /// TON: the representation hash of the voucher's or anchor's cell.
    TonCell,
}

/// Tag of a signed anchor cell (`anchor#_ tag:uint32 …` in schema.tlb).
const TON_ANCHOR_TAG: u32 = 0x616e_6331;

impl SignatureFormat {
    pub fn voucher_message(self, v: &Voucher) -> Vec<u8> {
        match self {
            SignatureFormat::Ledger => v.message().to_vec(),
            SignatureFormat::TonCell => {
                // voucher#_ op:uint32 tokens:uint64 contract:MsgAddressInt
                let mut c = CellBits::default();
                c.uint(u64::from(v.op.code()), 32);
                c.uint(v.cumulative, 64);
                c.address(&v.contract);
                c.hash().to_vec()
            }
        }
    }

    pub fn anchor_message(self, proxy: &Address, seqno: u64, hash: &SessionHash) -> Vec<u8> {
        match self {
            SignatureFormat::Ledger => crate::anchor::message(proxy, seqno, hash).to_vec(),
            SignatureFormat::TonCell => {
                // anchor#_ tag:uint32 proxy:MsgAddressInt seqno:uint64 session_hash:bits256
                let mut c = CellBits::default();
                c.uint(u64::from(TON_ANCHOR_TAG), 32);
                c.address(proxy);
                c.uint(seqno, 64);
                c.bytes(&hash.0);
                c.hash().to_vec()
            }
        }
    }
}

/// The data bits of one ordinary TON cell without references (at most 1023 bits).
#[derive(Default)]
struct CellBits {
    bits: Vec<bool>,
}

impl CellBits {
    fn uint(&mut self, v: u64, width: u32) {
        for i in (0..width).rev() {
            self.bits.push((v >> i) & 1 == 1);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        for byte in b {
            self.uint(u64::from(*byte), 8);
        }
    }

    /// `addr_std$10 anycast:nothing$0 workchain_id:int8 address:bits256`, workchain 0.
    fn address(&mut self, a: &Address) {
        self.uint(0b100, 3);
        self.uint(0, 8);
        self.bytes(&a.0);
    }

    /// The representation hash: SHA-256 of descriptors d1 (no refs, ordinary, level 0) and
    /// d2 (⌈b/8⌉ + ⌊b/8⌋), then the data padded with a 1 bit and zeros to a whole byte.
    fn hash(&self) -> [u8; 32] {
        let n = self.bits.len();
        debug_assert!(n <= 1023);
        let d2 = (n.div_ceil(8) + n / 8) as u8;
        let mut padded = self.bits.clone();
        if !n.is_multiple_of(8) {
            padded.push(true);
            while !padded.len().is_multiple_of(8) {
                padded.push(false);
            }
        }
        let mut repr = vec![0u8, d2];
        repr.extend(
            padded
                .chunks(8)
                .map(|c| c.iter().fold(0u8, |acc, &b| (acc << 1) | u8::from(b))),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(digest(&SHA256, &repr).as_ref());
        out
    }
}
