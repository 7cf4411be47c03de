//! Shared helpers of the property-based fuzz tests (`crates/*/tests/fuzz_*.rs`).
//!
//! `cargo fuzz` needs a nightly toolchain; these tests are its stable stand-in: `proptest`
//! feeds arbitrary and structure-aware mutated inputs to every decoder a peer or an app can
//! reach, a bounded number of cases per run (raise it with `PROPTEST_CASES=100000` for a
//! longer local run). Each crate includes this file by path (there is no shared test crate):
//!
//! ```ignore
//! #[path = "../../../tests/fuzz/support.rs"]
//! mod support;
//! ```
//!
//! It installs a counting global allocator, so [`peak_alloc`] can assert that decoding `n`
//! bytes never holds more than a linear amount of memory.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// `default` cases per property, unless `PROPTEST_CASES` asks for another count.
pub fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Minimized failures go into each file's const regression corpus (reviewed, with a
        // comment) rather than into machine-written `proptest-regressions` files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ allocation meter

/// The system allocator, counting the bytes each thread holds.
pub struct Meter;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

/// Adds to the running total of bytes allocated (a measure of copying work).
fn spend(bytes: usize) {
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(bytes)));
}

fn count(delta: isize) {
    // `try_with`: the allocator also runs while thread locals are being torn down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
            spend(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
            spend(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
            // Growing may move (copy) the block: count it as new work.
            spend(new_size.saturating_sub(layout.size()));
        }
        p
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// Runs `f` and returns its result with the most bytes this thread held allocated at once
/// while it ran, beyond what was already held when it started.
pub fn peak_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, usize::try_from(peak - base).unwrap_or(0))
}

/// Runs `f` and returns its result with the total bytes this thread allocated while it ran
/// (whatever was freed again): a proxy for copying work.
pub fn total_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = TOTAL.with(Cell::get);
    let r = f();
    (r, TOTAL.with(Cell::get) - before)
}

/// Asserts that decoding `input_len` bytes held at most `factor` × input + `slack` bytes.
pub fn assert_linear(what: &str, input_len: usize, peak: usize, factor: usize, slack: usize) {
    let limit = input_len * factor + slack;
    assert!(
        peak <= limit,
        "{what}: {peak} bytes allocated for {input_len} input bytes (limit {limit})"
    );
}

// ------------------------------------------------------------------ mutations

/// One edit of a byte string. Positions are [`Index`]es, resolved against the length at the
/// time the edit applies, so any list of edits applies to any input.
#[derive(Clone, Debug)]
pub enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Copies a range of the input to another position (repeats structure: fields, lines).
    Duplicate(Index, usize, Index),
    Truncate(Index),
    /// Overwrites with a boundary integer (0, max, sign bits, lengths), little or big endian:
    /// the classic way to hit length and count fields.
    Integer(Index, u64, u8, bool),
}

/// Integers that sit on boundaries of the usual field widths.
pub const INTERESTING: [u64; 14] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
    4096,
];

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        2 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), 1usize..64, any::<Index>())
            .prop_map(|(i, n, to)| Mutation::Duplicate(i, n, to)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (
            any::<Index>(),
            prop::sample::select(&INTERESTING[..]),
            prop::sample::select(&[1u8, 2, 4, 8][..]),
            any::<bool>()
        )
            .prop_map(|(i, v, w, be)| Mutation::Integer(i, v, w, be)),
    ]
}

/// Applies `edits` in order to a copy of `data`.
pub fn mutate(data: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut out = data.to_vec();
    for edit in edits {
        let len = out.len();
        let at = |i: &Index| if len == 0 { 0 } else { i.index(len) };
        match edit {
            Mutation::FlipBit(i, bit) if len > 0 => out[at(i)] ^= 1 << bit,
            Mutation::SetByte(i, b) if len > 0 => out[at(i)] = *b,
            Mutation::Insert(i, bytes) => {
                let p = if len == 0 { 0 } else { i.index(len + 1) };
                out.splice(p..p, bytes.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let p = at(i);
                out.drain(p..(p + n).min(len));
            }
            Mutation::Duplicate(i, n, to) if len > 0 => {
                let p = at(i);
                let piece = out[p..(p + n).min(len)].to_vec();
                let q = to.index(len + 1);
                out.splice(q..q, piece);
            }
            Mutation::Truncate(i) => out.truncate(if len == 0 { 0 } else { i.index(len + 1) }),
            Mutation::Integer(i, v, width, be) if len > 0 => {
                let w = usize::from(*width);
                let bytes = if *be {
                    v.to_be_bytes()[8 - w..].to_vec()
                } else {
                    v.to_le_bytes()[..w].to_vec()
                };
                let p = at(i);
                let end = (p + w).min(len);
                out[p..end].copy_from_slice(&bytes[..end - p]);
            }
            _ => {}
        }
    }
    out
}

/// Up to `max` edits.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=max)
}

/// One of `seeds`, mutated by up to `max` edits (the structure-aware half of fuzzing: inputs
/// that get past the first checks of a decoder and into its deeper paths).
pub fn mutated_from(seeds: Vec<Vec<u8>>, max: usize) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(seeds), mutations(max)).prop_map(|(seed, edits)| mutate(&seed, &edits))
}

/// Arbitrary bytes, biased towards short inputs.
pub fn bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max_len)
}

// ------------------------------------------------------------------ chunking

/// Cut points for splitting a byte stream into chunks (resolved like [`Mutation`] positions).
pub fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

/// `data` split at `cuts` (empty chunks included: a relay may see them).
pub fn split<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for p in at {
        out.push(&data[prev..p]);
        prev = p;
    }
    out.push(&data[prev..]);
    out
}
