//! The oracle of the client's request parser (`crates/client/src/request.rs`, `parse`), written
//! from the documented rules: shared by the proptest (`crates/client/tests/fuzz_request.rs`)
//! and the cargo-fuzz target (`fuzz/fuzz_targets/client_request.rs`), which include it by path
//! beside `mod request` and a crate-level `same_json`.

use crate::request::{ParsedRequest, RequestDefaults};
use serde_json::{Map, Value};
use std::time::Duration;

pub fn defaults() -> RequestDefaults {
    RequestDefaults {
        max_tokens: 1000,
        max_coefficient: 4000,
        timeout: Duration::from_secs(120),
    }
}

/// A u32 field as documented: absent or null = default, else an integer in [0, 2^32).
fn uint(obj: &Map<String, Value>, k: &str) -> Result<Option<u32>, ()> {
    match obj.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(()),
    }
}

/// What `parse` must return for `doc`: (model, stream, max_tokens, max_coefficient, timeout in
/// seconds) or a refusal. Written from the documented rules.
pub fn oracle(doc: &Value) -> Option<(String, bool, u32, u32, Option<f64>)> {
    let obj = doc.as_object()?;
    let model = obj.get("model")?.as_str().filter(|m| !m.is_empty())?;
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(v) => v.as_bool()?,
    };
    let max_tokens = match uint(obj, "max_completion_tokens").ok()? {
        Some(n) => n,
        None => uint(obj, "max_tokens").ok()?.unwrap_or(1000),
    };
    let max_coefficient = uint(obj, "max_coefficient").ok()?.unwrap_or(4000);
    let timeout = match obj.get("timeout") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().filter(|s| *s > 0.0 && *s <= 3600.0)?),
    };
    Some((
        model.to_string(),
        stream,
        max_tokens,
        max_coefficient,
        timeout,
    ))
}

pub fn check(doc: &Value, got: &Result<ParsedRequest, String>) {
    match (oracle(doc), got) {
        (None, Err(e)) => assert!(!e.is_empty()),
        (None, Ok(r)) => panic!("accepted {doc}: {r:?}"),
        (Some(_), Err(e)) => panic!("refused {doc}: {e}"),
        (Some((model, stream, max_tokens, max_coefficient, timeout)), Ok(r)) => {
            assert_eq!(
                (&r.model, r.stream, r.max_tokens, r.max_coefficient),
                (&model, stream, max_tokens, max_coefficient)
            );
            match timeout {
                None => assert_eq!(r.timeout, Duration::from_secs(120)),
                Some(s) => {
                    assert!(r.timeout <= Duration::from_secs(3600));
                    assert!(
                        (r.timeout.as_secs_f64() - s).abs() < 1e-6,
                        "{s} -> {:?}",
                        r.timeout
                    );
                }
            }
            let mut want = doc.as_object().unwrap().clone();
            want.remove("max_coefficient");
            want.remove("timeout");
            let body: Value = serde_json::from_slice(&r.body).expect("forwarded body is JSON");
            assert!(
                crate::same_json(&body, &Value::Object(want)),
                "forwarded {body} for {doc}"
            );
        }
    }
}
