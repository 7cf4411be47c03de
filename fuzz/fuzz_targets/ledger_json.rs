//! The ledger's JSON types as the chain decodes them from others (`Op` is the body of the
//! chain's `POST /submit`; `World` what a `DbChain` reloads or a `RemoteChain` reads from
//! `/state`), and decoded ops applied to a live world. Properties (as in
//! `crates/ledger/tests/fuzz_json.rs`):
//!
//! - decoding never panics, memory stays linear, and what decodes round-trips exactly;
//! - applying decoded ops never panics, an accepted op keeps the accounting invariants and
//!   moves time to when it was applied, and a refused op changes nothing;
//! - a decoded world that passes the invariant check a chain runs on load takes every kind of
//!   op without panicking.
//!
//! Input: JSON; one op per line is applied in order to a world with a proxy, a client and a
//! worker (`crates/ledger/tests/common`); a line that is a bare number advances time first.
#![no_main]

use std::fmt::Debug;

use cocoon_fuzz::ledger::start;
use cocoon_fuzz::{json_budget, within};
use cocoon_ledger::*;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `raw` as `T`; what decodes must re-encode and decode to the same value.
fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + Debug>(raw: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(raw).ok()?;
    let text = serde_json::to_vec(&v).expect("a decoded value encodes");
    let back: T = serde_json::from_slice(&text).expect("an encoded value decodes");
    assert_eq!(back, v);
    Some(v)
}

fn decode_all(raw: &[u8]) -> Option<World> {
    roundtrip::<SignedVoucher>(raw);
    roundtrip::<SignedAnchor>(raw);
    roundtrip::<Op>(raw);
    roundtrip::<Address>(raw);
    roundtrip::<PublicKey>(raw);
    roundtrip::<Signature>(raw);
    roundtrip::<SessionHash>(raw);
    roundtrip::<VoucherOp>(raw);
    roundtrip::<RootParams>(raw);
    roundtrip::<Effects>(raw);
    roundtrip::<CounterView>(raw);
    roundtrip::<PeerCounters>(raw);
    roundtrip::<TokenCounts>(raw);
    roundtrip::<World>(raw)
}

/// Applies each line that decodes as an op, in order.
fn apply_lines(raw: &[u8]) {
    let mut world = start().world.clone();
    for line in raw.split(|&b| b == b'\n') {
        if let Ok(secs) = serde_json::from_slice::<u64>(line) {
            world.now = world.now.saturating_add(secs);
            continue;
        }
        let Ok(op) = serde_json::from_slice::<Op>(line) else {
            continue;
        };
        let now = world.now;
        let before = world.clone();
        match world.apply(&op, now) {
            Ok(_) => {
                let ok = world.check_invariants();
                assert!(ok.is_ok(), "{op:?} at {now} broke the world: {ok:?}");
                assert_eq!(world.now, now);
            }
            Err(e) => {
                assert!(world == before, "refused op changed the world: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

fuzz_target!(init: { start(); }, |data: &[u8]| {
    let world = within("ledger decode", json_budget(data.len()), || decode_all(data));
    apply_lines(data);
    // A stored world that passes the check on load: no op may panic on it.
    if let Some(mut world) = world {
        if world.check_invariants().is_ok() {
            for (i, op) in start().ops.iter().enumerate() {
                let now = world.now.saturating_add(i as u64 * 100);
                let _ = world.apply(op, now);
            }
        }
    }
});
