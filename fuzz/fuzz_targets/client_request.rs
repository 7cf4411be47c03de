//! The client's app-facing request parser (`crates/client/src/request.rs`, `parse`), which
//! reads every body an app posts to the client API. Properties (the oracle is
//! `tests/fuzz/oracle_client_request.rs`, shared with `crates/client/tests/fuzz_request.rs`):
//!
//! - nothing panics; refusals are non-empty messages, and bytes that are not JSON are refused
//!   as such; memory stays linear ([`cocoon_fuzz::json_budget`]);
//! - it accepts exactly what the documented rules accept, reads the routing fields as
//!   documented (`max_completion_tokens` before `max_tokens`, defaults for absent or null
//!   fields, a timeout in (0, 3600] seconds), and forwards the request minus the client-only
//!   `max_coefficient` and `timeout`.
//!
//! `request` is a private module of the client, compiled in here by path.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/client/src/request.rs"]
mod request;

#[allow(dead_code)]
#[path = "../../tests/fuzz/oracle_client_request.rs"]
mod oracle;

use cocoon_fuzz::{json_budget, same_json, within};
use libfuzzer_sys::fuzz_target;
use oracle::{check, defaults};
use request::parse;
use serde_json::Value;

fuzz_target!(|raw: &[u8]| {
    let got = within("parse", json_budget(raw.len()), || parse(raw, &defaults()));
    match serde_json::from_slice::<Value>(raw) {
        Ok(doc) => check(&doc, &got),
        Err(_) => assert!(got.is_err_and(|e| e.contains("not valid JSON"))),
    }
});
