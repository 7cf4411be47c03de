//! The oracle of the worker's body rewrite (`crates/worker/src/body.rs`, `rewrite`), written
//! from the API contract: shared by the proptest (`crates/worker/tests/fuzz_body.rs`) and the
//! cargo-fuzz target (`fuzz/fuzz_targets/worker_body.rs`), which include it by path beside a
//! crate-level `MODEL` and `same_json`.

use crate::MODEL;
use serde_json::{Map, Value};

/// Whether `rewrite` should accept: written from the API contract, not from the code.
pub fn oracle_accepts(path: &str, doc: &Value, stream: bool) -> bool {
    let chat = path == "/v1/chat/completions";
    if !chat && path != "/v1/completions" {
        return false;
    }
    let Some(obj) = doc.as_object() else {
        return false;
    };
    if obj.get("model").and_then(Value::as_str) != Some(MODEL) {
        return false;
    }
    let shape_ok = if chat {
        obj.get("messages").is_some_and(Value::is_array)
    } else {
        obj.get("prompt")
            .is_some_and(|p| p.is_string() || p.is_array())
    };
    let field = if chat && obj.contains_key("max_completion_tokens") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let cap_ok = match obj.get(field) {
        None | Some(Value::Null) => true,
        Some(v) => v.as_u64().is_some(),
    };
    let options_ok = !stream || obj.get("stream_options").is_none_or(Value::is_object);
    shape_ok && cap_ok && options_ok
}

/// Checks an accepted rewrite against the input document.
pub fn check_output(path: &str, doc: &Value, out: &[u8], cap: u32, stream: bool) {
    let input = doc.as_object().unwrap();
    let got: Map<String, Value> = serde_json::from_slice(out).expect("output is a JSON object");
    assert_eq!(got["model"], MODEL);
    assert_eq!(got["stream"], stream);
    if stream {
        assert_eq!(got["stream_options"]["include_usage"], true);
    } else {
        assert!(!got.contains_key("stream_options"));
    }
    let field = if path == "/v1/chat/completions" && input.contains_key("max_completion_tokens") {
        assert!(!got.contains_key("max_tokens"), "two caps sent");
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let asked = input.get(field).and_then(Value::as_u64);
    let want = asked.map_or(u64::from(cap), |a| a.min(u64::from(cap)));
    assert_eq!(got[field].as_u64(), Some(want), "{field}");
    // Everything else passes unchanged.
    for (k, v) in input {
        let touched = ["stream", "stream_options", "max_tokens", field].contains(&k.as_str());
        if !touched {
            let kept = got.get(k).is_some_and(|g| crate::same_json(g, v));
            assert!(kept, "field {k:?} changed: {v} -> {:?}", got.get(k));
        }
    }
    for (k, v) in &got {
        if !input.contains_key(k) {
            assert!(
                ["stream", "stream_options", field].contains(&k.as_str()),
                "field {k:?} = {v} appeared"
            );
        }
    }
}
