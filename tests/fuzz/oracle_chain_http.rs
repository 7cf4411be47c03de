//! What the chain server's JSON must satisfy, shared by the proptest
//! (`crates/chain/tests/fuzz_http.rs`) and the cargo-fuzz side (`fuzz/src/lib.rs`, for the
//! `chain_http` target and its corpus), which include it by path: everything a `RemoteChain`
//! decodes re-encodes to the same value, and the registry the fuzzed chain starts with.

use cocoon_chain::http::{AdvanceBody, BalanceBody, ErrorBody};
use cocoon_chain::ledger::{RootParams, World};
use cocoon_chain::{ProxyEntry, Registry, Tip, TxRecord};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Decodes `raw` as `T`; what decodes must re-encode and decode to the same value.
pub fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + Debug>(raw: &[u8]) -> Option<T> {
    let v: T = serde_json::from_slice(raw).ok()?;
    let text = serde_json::to_vec(&v).expect("a decoded value encodes");
    let back: T = serde_json::from_slice(&text).expect("an encoded value decodes");
    assert_eq!(back, v);
    Some(v)
}

/// Decodes `raw` as everything a `RemoteChain` reads from a chain server.
pub fn decode_all(raw: &[u8]) {
    roundtrip::<Registry>(raw);
    roundtrip::<Tip>(raw);
    roundtrip::<Vec<TxRecord>>(raw);
    roundtrip::<TxRecord>(raw);
    roundtrip::<World>(raw);
    // Not `PartialEq`: decode only.
    let _ = serde_json::from_slice::<BalanceBody>(raw);
    let _ = serde_json::from_slice::<ErrorBody>(raw);
    let _ = serde_json::from_slice::<AdvanceBody>(raw);
}

pub fn registry() -> Registry {
    let mut r = Registry {
        version: 7,
        params: RootParams::default(),
        allow_sim: true,
        pow_difficulty: 20,
        proxies: vec![ProxyEntry {
            name: "p".into(),
            client_endpoint: "127.0.0.1:1".into(),
            worker_endpoint: "[::1]:2".into(),
        }],
        ..Registry::default()
    };
    r.proxy_image_hashes.insert([1; 32]);
    r.worker_image_hashes.insert([2; 32]);
    r.model_hashes.insert(cocoon_chain::model_hash("m@1:abc"));
    r.mrtd_allowlist.insert([3; 48]);
    r.rtmr_allowlist
        .insert([[4; 48], [5; 48], [6; 48], [7; 48]]);
    r.pinned_root_ids.insert([8; 32]);
    r.accepted_tcb_statuses.insert("SWHardeningNeeded".into());
    r
}
