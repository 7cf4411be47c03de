//! What the fuzz targets share: an allocation budget (the "no unbounded allocation" half of
//! every target), a deterministic way to cut an input into chunks, and JSON equality.
//!
//! The budget is a counting global allocator. [`within`] runs a decoder with a limit on the
//! bytes its thread may hold on top of what it held before, usually linear in the input
//! ([`linear`]); an allocation past it aborts the process at once, with a message saying what
//! asked for how much. libFuzzer reports the abort as a crash and saves the input, like a
//! panic. (libFuzzer's own `-malloc_limit_mb` needs a sanitizer's allocator hooks, which a
//! `-s none` build does not have.) Any single allocation over [`HARD_CAP`] aborts anywhere.
//!
//! The limits follow the `assert_linear` checks of the property tests under
//! `crates/*/tests/fuzz_*.rs` (measured with `tests/fuzz/support.rs`), except where the worst
//! shapes measured by `examples/amplification.rs` cost more than those tests allow: JSON read
//! into a `serde_json::Value` ([`json_budget`]) and nested repeated protobuf fields.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

/// No allocation anywhere may be larger (inputs are a few KiB; the largest buffers the
/// decoders allow themselves are the usage scanner's 4 and 16 MiB).
pub const HARD_CAP: usize = 256 << 20;

/// The system allocator, counting the bytes each thread holds and enforcing [`within`]'s
/// limit.
pub struct Budget;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static LIMIT: Cell<isize> = const { Cell::new(isize::MAX) };
    static WHAT: Cell<&'static str> = const { Cell::new("") };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Writes `parts` to stderr and aborts; allocates nothing (the allocator calls it).
fn die(parts: &[&dyn std::fmt::Display]) -> ! {
    struct Buf([u8; 512], usize);
    impl std::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let n = s.len().min(self.0.len() - self.1);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut buf = Buf([0; 512], 0);
    for p in parts {
        let _ = std::fmt::Write::write_fmt(&mut buf, format_args!("{p}"));
    }
    let _ = std::io::stderr().write_all(&buf.0[..buf.1]);
    std::process::abort();
}

/// Counts `size` more bytes on this thread; aborts past the limit.
fn grow(size: usize) {
    if size > HARD_CAP {
        die(&[
            &"fuzz: one allocation of ",
            &size,
            &" bytes (cap ",
            &HARD_CAP,
            &")\n",
        ]);
    }
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size as isize);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        let limit = LIMIT.try_with(Cell::get).unwrap_or(isize::MAX);
        if now > limit {
            // No further checks while reporting.
            let _ = LIMIT.try_with(|l| l.set(isize::MAX));
            let what = WHAT.try_with(Cell::get).unwrap_or("");
            die(&[
                &"fuzz: allocation budget exceeded in `",
                &what,
                &"`: ",
                &(now - limit),
                &" bytes over (an allocation of ",
                &size,
                &" bytes)\n",
            ]);
        }
    });
}

fn shrink(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size as isize)));
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated, and the
// abort path allocates nothing.
unsafe impl GlobalAlloc for Budget {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grow(new_size - layout.size());
        }
        let p = System.realloc(ptr, layout, new_size);
        if new_size < layout.size() && !p.is_null() {
            shrink(layout.size() - new_size);
        }
        p
    }
}

#[global_allocator]
static BUDGET: Budget = Budget;

/// `factor` bytes per input byte plus `slack`.
pub fn linear(input_len: usize, factor: usize, slack: usize) -> usize {
    input_len.saturating_mul(factor).saturating_add(slack)
}

/// The budget of a decoder that builds a `serde_json::Value` (or buffers serde `Content`)
/// from `input_len` bytes: 2 × `size_of::<Value>()` per byte plus 128 KiB. A JSON array
/// allocates room for 4 values on its first element, so `[[[0]]],…` costs up to
/// 2 × `size_of::<Value>()` (144 with `preserve_order`) bytes per input byte, measured by
/// `examples/amplification.rs`; nesting beyond serde_json's recursion limit of 128 is
/// refused, which the slack covers.
pub fn json_budget(input_len: usize) -> usize {
    linear(
        input_len,
        2 * std::mem::size_of::<serde_json::Value>() + 32,
        128 << 10,
    )
}

/// Runs `f`, aborting if this thread's allocations while it runs hold more than `limit` bytes
/// on top of what the thread held when it started. Nests (the tighter limit applies).
pub fn within<R>(what: &'static str, limit: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(isize, &'static str);
    impl Drop for Restore {
        fn drop(&mut self) {
            LIMIT.with(|l| l.set(self.0));
            WHAT.with(|w| w.set(self.1));
        }
    }
    let base = LIVE.with(Cell::get);
    let outer = LIMIT.with(Cell::get);
    let _restore = Restore(outer, WHAT.with(Cell::get));
    let limit = base.saturating_add(isize::try_from(limit).unwrap_or(isize::MAX));
    LIMIT.with(|l| l.set(limit.min(outer)));
    WHAT.with(|w| w.set(what));
    f()
}

/// Runs `f`; returns its result and the most bytes this thread held at once while it ran,
/// beyond what it held when it started (for measuring a decoder's memory per input byte).
pub fn peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, usize::try_from(peak - base).unwrap_or(0))
}

// ------------------------------------------------------------------ input helpers

/// The first byte of `data` (flags, a selector) and the rest; `(0, [])` for no input.
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, &[]),
    }
}

/// `data` cut into chunks at up to 12 positions chosen by `seed` (empty chunks included: a
/// relay may see them). The same seed and length always give the same cuts.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut x = u64::from(seed) << 32 | data.len() as u64 | 1;
    let mut at: Vec<usize> = (0..seed % 13)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (data.len() as u64 + 1)) as usize
        })
        .collect();
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

/// The first `n` bytes as a little-endian integer (missing bytes are zero).
pub fn le_u64(data: &[u8], n: usize) -> u64 {
    let mut b = [0u8; 8];
    let n = n.min(8).min(data.len());
    b[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(b)
}

/// JSON equality, except that floats may differ in their last bits: serde_json (without its
/// `float_roundtrip` feature) parses long decimals to a neighbouring double. The same
/// comparison as `same` in `tests/fuzz/json.rs`.
pub fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

// ------------------------------------------------------------------ ledger world

/// The ledger world the `ledger_json` target applies ops to, shared with the corpus
/// generator so the seeds name its contracts.
pub mod ledger;

// ------------------------------------------------------------------ chain registry

/// What the chain server's JSON must satisfy (shared with the proptest).
#[path = "../../tests/fuzz/oracle_chain_http.rs"]
pub mod chain_oracle;

/// The registry the `chain_http` target's chain starts with (also a seed of its corpus).
pub fn chain_registry() -> &'static cocoon_chain::Registry {
    static R: std::sync::OnceLock<cocoon_chain::Registry> = std::sync::OnceLock::new();
    R.get_or_init(chain_oracle::registry)
}
