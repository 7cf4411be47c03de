//! The cost injection into the answers a proxy relays to the app
//! (`cocoon_client::usage_cost`): `inject_json` on whole bodies and `SseCostRelay` on
//! streams. Properties (as in `crates/client/tests/fuzz_usage_cost.rs`):
//!
//! - nothing panics;
//! - without a cost (`finish(None)`, `abort()`) the relay gives back the stream unchanged,
//!   however it is chunked, and with a cost its output does not depend on the chunking;
//! - `inject_json` adds `total_cost`, grows the body at most linearly, and keeps valid JSON
//!   valid.
//!
//! `usage_cost.rs` is compiled in by path (it depends only on `bytes`, `serde_json` and
//! `cocoon_proto`), which spares this project the client's dependencies.
//!
//! Input: one byte of flags (bit 0: `inject_json`, else the relay; bits 1-2: which cost), one
//! byte choosing the cut points, then the body or stream.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/client/src/usage_cost.rs"]
mod usage_cost;

use bytes::Bytes;
use cocoon_fuzz::{chunks, json_budget, linear, split_first, within};
use cocoon_proto::Cost;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use usage_cost::{inject_json, SseCostRelay};

fn cost(which: u8) -> Cost {
    let (p, c, t) = match which & 3 {
        0 => (1, 2, 3),
        1 => (0, 0, 0),
        2 => (u64::MAX, u64::MAX, u64::MAX),
        _ => (123_456_789, 987_654_321, 1_111_111_110),
    };
    Cost {
        prompt_cost: p,
        completion_cost: c,
        total_cost: t,
        adjusted_tokens: 7,
    }
}

/// Pushes `parts`; returns what was released along the way and the relay.
fn push_all(parts: &[&[u8]]) -> (Vec<u8>, SseCostRelay) {
    let mut relay = SseCostRelay::new();
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&relay.push(Bytes::copy_from_slice(p)));
    }
    (out, relay)
}

fn relay_all_ways(data: &[u8], seed: u8, cost: &Cost) {
    let parts = chunks(data, seed);
    let (mut aborted, relay) = push_all(&parts);
    aborted.extend_from_slice(&relay.abort());
    assert_eq!(aborted, data, "abort must give back the stream unchanged");
    let (mut plain, relay) = push_all(&parts);
    plain.extend_from_slice(&relay.finish(None));
    assert_eq!(plain, data, "no cost must give back the stream unchanged");

    let (mut chunked, relay) = push_all(&parts);
    chunked.extend_from_slice(&relay.finish(Some(cost)));
    let (mut whole, relay) = within("SseCostRelay", linear(data.len(), 8, 64 << 10), || {
        push_all(&[data])
    });
    whole.extend_from_slice(&relay.finish(Some(cost)));
    assert_eq!(chunked, whole, "chunking changed the output");
    if data.len() <= 2048 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        let (mut one, relay) = push_all(&bytes);
        one.extend_from_slice(&relay.finish(Some(cost)));
        assert_eq!(one, whole, "byte-at-a-time changed the output");
    }
}

fn inject(raw: &[u8], cost: &Cost) {
    let out = within("inject_json", json_budget(raw.len()), || {
        inject_json(raw, cost)
    });
    if let Some(out) = out {
        let total = format!("\"total_cost\":{}", cost.total_cost);
        assert!(out.windows(total.len()).any(|w| w == total.as_bytes()));
        assert!(
            out.len() <= 8 * raw.len() + 256,
            "{} -> {} bytes",
            raw.len(),
            out.len()
        );
        if serde_json::from_slice::<Value>(raw).is_ok() {
            assert!(
                serde_json::from_slice::<Value>(&out).is_ok(),
                "broke valid JSON"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = split_first(data);
    let (seed, body) = split_first(rest);
    let cost = cost(flags >> 1);
    if flags & 1 == 1 {
        inject(body, &cost);
    } else {
        relay_all_ways(body, seed, &cost);
    }
});
