//! Fuzzing the app-facing request parser (`src/request.rs`, `parse`), which reads every body an
//! app posts to the client API. Properties:
//!
//! - nothing panics, on arbitrary bytes or mutated JSON; refusals are non-empty messages;
//! - it accepts exactly what an independent oracle of the documented rules accepts;
//! - routing fields are read as documented (`max_completion_tokens` before `max_tokens`,
//!   defaults for absent or null fields, timeout within (0, 3600] seconds), and the forwarded
//!   body is the request minus the client-only `max_coefficient` and `timeout`.
//!
//! `request` is a private module of the client, so it is compiled in here by path (it only
//! depends on `serde_json`). Making `parse` and `ParsedRequest` public (`pub mod request;` in
//! `src/lib.rs`, or `pub use request::{parse, ParsedRequest};`) would let this test use
//! `cocoon_client::…` instead.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-client --test fuzz_request` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

#[path = "../../../tests/fuzz/json.rs"]
mod json;

#[allow(dead_code)]
#[path = "../src/request.rs"]
mod request;

#[allow(dead_code)]
#[path = "../../../tests/fuzz/oracle_client_request.rs"]
mod oracle;

use json::same as same_json;
use oracle::{check, defaults};
use proptest::prelude::*;
use request::parse;
use serde_json::{Map, Value};
use std::time::Duration;
use support::{assert_linear, config, peak_alloc};

const KEYS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "max_coefficient",
    "timeout",
    "prompt",
];

/// An app request: the routing fields present most of the time, of any type and value.
fn request() -> impl Strategy<Value = Value> {
    let model = prop_oneof![
        4 => Just(Value::from("test-model")),
        1 => Just(Value::from("")),
        1 => json::value(KEYS),
    ];
    let number = || {
        prop_oneof![
            3 => json::number(),
            1 => (0u64..5000).prop_map(Value::from),
            1 => json::value(KEYS),
        ]
    };
    let opt = |s: BoxedStrategy<Value>| prop::option::weighted(0.5, s);
    (
        json::value(KEYS),
        prop::option::weighted(0.9, model),
        opt(prop_oneof![3 => any::<bool>().prop_map(Value::Bool), 1 => json::value(KEYS)].boxed()),
        opt(number().boxed()),
        opt(number().boxed()),
        opt(number().boxed()),
        opt(prop_oneof![
            2 => json::number(),
            2 => (0.0f64..4000.0).prop_map(Value::from),
            1 => json::value(KEYS),
        ]
        .boxed()),
    )
        .prop_map(|(base, model, stream, mt, mct, coef, timeout)| {
            let mut obj = match base {
                Value::Object(o) => o,
                Value::Null => return Value::Null,
                _ => Map::new(),
            };
            for (k, v) in [
                ("model", model),
                ("stream", stream),
                ("max_tokens", mt),
                ("max_completion_tokens", mct),
                ("max_coefficient", coef),
                ("timeout", timeout),
            ] {
                if let Some(v) = v {
                    obj.insert(k.into(), v);
                }
            }
            Value::Object(obj)
        })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(raw in support::bytes(512)) {
        let got = parse(&raw, &defaults());
        match serde_json::from_slice::<Value>(&raw) {
            Ok(doc) => check(&doc, &got),
            Err(_) => prop_assert!(got.is_err_and(|e| e.contains("not valid JSON"))),
        }
    }

    #[test]
    fn requests_match_the_oracle(doc in request(), pretty in any::<bool>()) {
        let raw = if pretty {
            serde_json::to_vec_pretty(&doc).unwrap()
        } else {
            serde_json::to_vec(&doc).unwrap()
        };
        let (got, peak) = peak_alloc(|| parse(&raw, &defaults()));
        assert_linear("parse", raw.len(), peak, 64, 4096);
        // Compare with what the parser saw (floats as serde_json reads them).
        let seen: Value = serde_json::from_slice(&raw).unwrap();
        check(&seen, &got);
    }

    #[test]
    fn mutated_requests_are_handled_cleanly(raw in json::mutated_text(request(), 6)) {
        let got = parse(&raw, &defaults());
        if let Ok(doc) = serde_json::from_slice::<Value>(&raw) {
            check(&doc, &got);
        } else {
            prop_assert!(got.is_err());
        }
    }
}

// ------------------------------------------------------------------ regression corpus

/// Tricky bodies and whether they are accepted.
const CORPUS: &[(&str, bool)] = &[
    ("", false),
    ("null", false),
    ("[]", false),
    ("{}", false),
    (r#"{"model":""}"#, false),
    (r#"{"model":null}"#, false),
    (r#"{"model":"m"}"#, true),
    (r#"{"model":"m","stream":null}"#, true),
    (r#"{"model":"m","stream":0}"#, false),
    (r#"{"model":"m","max_tokens":4294967295}"#, true),
    (r#"{"model":"m","max_tokens":4294967296}"#, false),
    // serde_json reads `-0` as the float -0.0, not an integer.
    (r#"{"model":"m","max_tokens":-0}"#, false),
    (r#"{"model":"m","max_tokens":0.0}"#, false),
    // `max_completion_tokens` wins; a bad `max_tokens` next to it is not even looked at.
    (
        r#"{"model":"m","max_completion_tokens":5,"max_tokens":"x"}"#,
        true,
    ),
    (
        r#"{"model":"m","max_completion_tokens":null,"max_tokens":"x"}"#,
        false,
    ),
    (r#"{"model":"m","max_coefficient":-1}"#, false),
    (r#"{"model":"m","timeout":0}"#, false),
    (r#"{"model":"m","timeout":-0.0}"#, false),
    (r#"{"model":"m","timeout":3600}"#, true),
    (r#"{"model":"m","timeout":3600.0000001}"#, false),
    (r#"{"model":"m","timeout":1e400}"#, false),
    (r#"{"model":"m","timeout":"5"}"#, false),
    (r#"{"model":"m","timeout":18446744073709551615}"#, false),
    // Accepted, and rounds to a zero Duration: the request then times out at once.
    (r#"{"model":"m","timeout":1e-300}"#, true),
    (r#"{"model":"m","model":""}"#, false),
    ("{\"model\":\"\\ud800\"}", false),
    ("{\"model\":\"m\"}\u{0}", false),
];

#[test]
fn corpus() {
    for (body, ok) in CORPUS {
        let got = parse(body.as_bytes(), &defaults());
        assert_eq!(got.is_ok(), *ok, "{body:?}: {got:?}");
        if let Ok(doc) = serde_json::from_str::<Value>(body) {
            check(&doc, &got);
        }
    }
    let tiny = parse(br#"{"model":"m","timeout":1e-300}"#, &defaults()).unwrap();
    assert_eq!(tiny.timeout, Duration::ZERO);
    // Nesting: refused by serde_json's recursion limit, never a stack overflow.
    for depth in [126, 127, 100_000] {
        let mut body = br#"{"model":"m","messages":"#.to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.push(b'}');
        assert_eq!(
            parse(&body, &defaults()).is_ok(),
            depth < 127,
            "depth {depth}"
        );
    }
}

/// The densest bodies (tiny values: ~130 bytes of `Value` per value) are refused past
/// `MAX_JSON_VALUES` before anything is parsed; a body just under the bound costs a bounded
/// amount, not ~100× its size.
#[test]
fn dense_bodies_are_bounded_before_parsing() {
    let body = |n: usize| format!(r#"{{"model":"m","prompt":[{}0]}}"#, "[0],".repeat(n));
    let n = cocoon_proto::MAX_JSON_VALUES / 2 - 8;
    let under = body(n);
    let (got, peak) = peak_alloc(|| parse(under.as_bytes(), &defaults()));
    assert!(got.is_ok(), "{:?}", got.err());
    if std::env::var_os("SHOW_PEAK").is_some() {
        eprintln!("peak {peak} bytes for {} input bytes", under.len());
    }
    assert!(
        peak < 64 << 20,
        "{peak} bytes for {} input bytes",
        under.len()
    );
    let over = body(n + 16);
    let (got, peak) = peak_alloc(|| parse(over.as_bytes(), &defaults()));
    let err = got.expect_err("refused");
    assert!(err.contains("JSON values"), "{err}");
    assert!(peak < 4096, "refused without parsing: {peak} bytes");
}
