//! The worker's request-body check and rewrite (`crates/worker/src/body.rs`, `rewrite`), the
//! HTTP body validator every body a proxy forwards goes through before it reaches the engine.
//! Properties (the oracle is `tests/fuzz/oracle_worker_body.rs`, shared with
//! `crates/worker/tests/fuzz_body.rs`):
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

#[path = "../../tests/fuzz/oracle_worker_body.rs"]
mod oracle;

use body::rewrite;
use cocoon_fuzz::{json_budget, same_json, split_first, within};
use libfuzzer_sys::fuzz_target;
use oracle::{check_output, oracle_accepts};
use serde_json::Value;

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
