//! The worker's request-body check and rewrite (`crates/worker/src/body.rs`, `rewrite`), the
//! HTTP body validator every body a proxy forwards goes through before it reaches the engine.
//! Properties (as in `crates/worker/tests/fuzz_body.rs`, whose oracle this repeats):
//!
//! - nothing panics; refusals are non-empty messages; memory stays linear
//!   ([`cocoon_fuzz::json_budget`]: serde_json's `Value` costs up to ~144 bytes per input byte,
//!   more than the 64 the property test assumes);
//! - it accepts exactly what the oracle (the API contract) accepts;
//! - what it sends is an object for the served model with `max_tokens` (or
//!   `max_completion_tokens`) at most the cap, `stream` as asked and usage forced on streams;
//!   every other field passes unchanged; the output is at most linearly larger, and rewriting
//!   it again changes nothing.
//!
//! `body` is a private module of the worker, compiled in here by path.
//!
//! Input: one byte of parameters (bits 0-2: path, bit 3: stream, bits 4-5: the cap), the body.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/worker/src/body.rs"]
mod body;

use body::rewrite;
use cocoon_fuzz::{json_budget, same_json, split_first, within};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const MODEL: &str = "m";
const PATHS: [&str; 8] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "",
    "/v1/chat/completions/",
    "/V1/completions",
];
const CAPS: [u32; 4] = [100, 0, 1, u32::MAX];

/// Whether `rewrite` should accept: written from the API contract, not from the code.
fn oracle_accepts(path: &str, doc: &Value, stream: bool) -> bool {
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
fn check_output(path: &str, doc: &Value, out: &[u8], cap: u32, stream: bool) {
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
    for (k, v) in input {
        let touched = ["stream", "stream_options", "max_tokens", field].contains(&k.as_str());
        if !touched {
            let kept = got.get(k).is_some_and(|g| same_json(g, v));
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

fuzz_target!(|data: &[u8]| {
    let (params, body) = split_first(data);
    let path = PATHS[usize::from(params & 7)];
    let stream = params & 8 != 0;
    let cap = CAPS[usize::from((params >> 4) & 3)];
    let got = within("rewrite", json_budget(body.len()), || {
        rewrite(path, body, MODEL, cap, stream)
    });
    let doc = serde_json::from_slice::<Value>(body).ok();
    match got {
        Ok(out) => {
            let doc = doc.expect("accepted bytes are JSON");
            assert!(oracle_accepts(path, &doc, stream), "accepted {doc}");
            check_output(path, &doc, &out, cap, stream);
            assert!(out.len() <= 8 * body.len() + 256);
            let again = rewrite(path, &out, MODEL, cap, stream).expect("output is accepted");
            let again: Value = serde_json::from_slice(&again).unwrap();
            let out: Value = serde_json::from_slice(&out).unwrap();
            assert!(same_json(&again, &out), "{again} != {out}");
        }
        Err(e) => {
            assert!(!e.is_empty());
            if let Some(doc) = doc {
                assert!(!oracle_accepts(path, &doc, stream), "refused {doc}: {e}");
            }
        }
    }
});
