//! Vector files (`contracts/vectors/*.json`) written the same in every build: shared by the
//! tests that generate them (`crates/ledger/tests/vectors.rs`,
//! `crates/ton/tests/wallet_vectors.rs`), which include it by path.

use serde_json::Value;

/// The value with every object's keys in sorted order, so the file is the same whether or not
/// serde_json's `preserve_order` feature is on in this build (feature unification differs
/// between `cargo test -p` and a workspace run).
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
