//! Fuzzing the worker's request-body check and rewrite (`src/body.rs`), which reads every body a
//! proxy forwards before it reaches the engine. Properties:
//!
//! - nothing panics, on arbitrary bytes or mutated JSON; refusals are non-empty messages;
//! - it accepts exactly what an independent oracle accepts;
//! - what it sends is an object for the served model with `max_tokens` (or
//!   `max_completion_tokens`) at most the cap, `stream` as asked and usage forced on streams;
//!   every other field passes unchanged;
//! - rewriting is idempotent and the output is at most linearly larger than the input.
//!
//! `body` is a private module of the worker, so it is compiled in here by path (the module only
//! depends on `serde_json` and `cocoon_proto`). Making it reachable (`pub mod body;` in
//! `src/lib.rs`, or `pub use body::rewrite;`) would let this test `use cocoon_worker::…` instead.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-worker --test fuzz_body` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

#[path = "../../../tests/fuzz/json.rs"]
mod json;

#[allow(dead_code)]
#[path = "../src/body.rs"]
mod body;

#[path = "../../../tests/fuzz/oracle_worker_body.rs"]
mod oracle;

use body::rewrite;
use json::same as same_json;
use oracle::{check_output, oracle_accepts};
use proptest::prelude::*;
use serde_json::{Map, Value};
use support::{assert_linear, config, peak_alloc};

const MODEL: &str = "m";
const PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "",
    "/v1/chat/completions/",
    "/V1/completions",
];
const KEYS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "include_usage",
    "role",
    "content",
    "m",
];

/// A request body: an object over the fields `rewrite` reads, with a plausible model and
/// messages/prompt most of the time, and any type in any field.
fn request() -> impl Strategy<Value = Value> {
    let model = prop_oneof![
        4 => Just(Value::from(MODEL)),
        1 => json::value(KEYS),
        1 => Just(Value::from("other")),
    ];
    let messages = prop_oneof![
        3 => Just(serde_json::json!([{"role":"user","content":"hi"}])),
        1 => json::value(KEYS),
    ];
    let prompt = prop_oneof![
        2 => Just(Value::from("once upon")),
        1 => Just(serde_json::json!([1, 2, 3])),
        1 => json::value(KEYS),
    ];
    let opt = |s: BoxedStrategy<Value>| prop::option::weighted(0.6, s);
    (
        json::value(KEYS),
        prop::option::weighted(0.9, model),
        opt(messages.boxed()),
        opt(prompt.boxed()),
        opt(json::number().boxed()),
        opt(json::number().boxed()),
        opt(json::value(KEYS).boxed()),
        opt(any::<bool>().prop_map(Value::Bool).boxed()),
    )
        .prop_map(
            |(base, model, messages, prompt, mt, mct, options, stream)| {
                let mut obj = match base {
                    Value::Object(o) => o,
                    other if other.is_null() => return other, // sometimes not an object at all
                    _ => Map::new(),
                };
                for (k, v) in [
                    ("model", model),
                    ("messages", messages),
                    ("prompt", prompt),
                    ("max_tokens", mt),
                    ("max_completion_tokens", mct),
                    ("stream_options", options),
                    ("stream", stream),
                ] {
                    if let Some(v) = v {
                        obj.insert(k.into(), v);
                    }
                }
                Value::Object(obj)
            },
        )
}

/// Mostly the two inference paths, sometimes another one.
fn path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => prop::sample::select(&PATHS[..2]),
        1 => prop::sample::select(PATHS),
    ]
}

fn cap() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(
        body in support::bytes(512),
        path in prop::sample::select(PATHS),
        cap in cap(),
        stream in any::<bool>(),
    ) {
        match rewrite(path, &body, MODEL, cap, stream) {
            Ok(out) => {
                let doc: Value = serde_json::from_slice(&body).expect("accepted bytes are JSON");
                check_output(path, &doc, &out, cap, stream);
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn requests_match_the_oracle(
        doc in request(),
        path in path(),
        cap in cap(),
        stream in any::<bool>(),
    ) {
        let body = serde_json::to_vec(&doc).unwrap();
        let (result, peak) = peak_alloc(|| rewrite(path, &body, MODEL, cap, stream));
        // serde_json's Value costs tens of bytes per input byte; never more than linear.
        assert_linear("rewrite", body.len(), peak, 64, 4096);
        match result {
            Ok(out) => {
                prop_assert!(oracle_accepts(path, &doc, stream), "accepted {doc}");
                check_output(path, &doc, &out, cap, stream);
                prop_assert!(out.len() <= 8 * body.len() + 256);
                // Rewriting what we send changes nothing.
                let again = rewrite(path, &out, MODEL, cap, stream).expect("output is accepted");
                let (again, out): (Value, Value) =
                    (serde_json::from_slice(&again).unwrap(), serde_json::from_slice(&out).unwrap());
                prop_assert!(json::same(&again, &out), "{} != {}", again, out);
            }
            Err(e) => {
                prop_assert!(!oracle_accepts(path, &doc, stream), "refused {doc}: {e}");
                prop_assert!(!e.is_empty());
            }
        }
    }

    #[test]
    fn mutated_requests_are_handled_cleanly(
        body in json::mutated_text(request(), 6),
        path in prop::sample::select(&PATHS[..2]),
        cap in cap(),
        stream in any::<bool>(),
    ) {
        match rewrite(path, &body, MODEL, cap, stream) {
            Ok(out) => {
                let doc: Value = serde_json::from_slice(&body).expect("accepted bytes are JSON");
                check_output(path, &doc, &out, cap, stream);
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }
}

// ------------------------------------------------------------------ regression corpus

/// Tricky bodies for `/v1/chat/completions` at cap 100, streaming, and whether they pass.
const CORPUS: &[(&str, bool)] = &[
    ("", false),
    ("null", false),
    ("[]", false),
    ("\"m\"", false),
    ("{}", false),
    (r#"{"model":"m"}"#, false),
    (r#"{"model":"m","messages":{}}"#, false),
    (r#"{"model":"m","messages":[]}"#, true),
    (r#"{"model":"m ","messages":[]}"#, false),
    (r#"{"model":"\u006d","messages":[]}"#, true),
    (r#"{"model":"m","messages":[],"max_tokens":null}"#, true),
    (r#"{"model":"m","messages":[],"max_tokens":-1}"#, false),
    (r#"{"model":"m","messages":[],"max_tokens":1.0}"#, false),
    (r#"{"model":"m","messages":[],"max_tokens":1e2}"#, false),
    (
        r#"{"model":"m","messages":[],"max_tokens":18446744073709551615}"#,
        true,
    ),
    (
        r#"{"model":"m","messages":[],"max_tokens":18446744073709551616}"#,
        false,
    ),
    (
        r#"{"model":"m","messages":[],"max_completion_tokens":null,"max_tokens":"x"}"#,
        true,
    ),
    (
        r#"{"model":"m","messages":[],"max_completion_tokens":"x","max_tokens":5}"#,
        false,
    ),
    (
        r#"{"model":"m","messages":[],"stream_options":null}"#,
        false,
    ),
    (
        r#"{"model":"m","messages":[],"stream_options":{"include_usage":false,"x":1}}"#,
        true,
    ),
    (r#"{"model":"m","messages":[],"stream":"yes"}"#, true),
    // Duplicate keys: serde_json keeps the last one.
    (r#"{"model":"x","model":"m","messages":[]}"#, true),
    (r#"{"model":"m","messages":[]} "#, true),
    (r#"{"model":"m","messages":[]}{}"#, false),
    ("{\"model\":\"m\",\"messages\":[],\"x\":\"\u{0}\"}", false),
    ("{\"model\":\"m\",\"messages\":[],\"x\":\"\\ud800\"}", false),
    ("\u{feff}{\"model\":\"m\",\"messages\":[]}", false),
];

#[test]
fn corpus() {
    for (body, ok) in CORPUS {
        let got = rewrite("/v1/chat/completions", body.as_bytes(), MODEL, 100, true);
        assert_eq!(got.is_ok(), *ok, "{body:?}: {got:?}");
        if let Ok(out) = got {
            let doc: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            check_output("/v1/chat/completions", &doc, &out, 100, true);
        }
    }
    // Nesting: serde_json's recursion limit refuses it instead of overflowing the stack.
    for depth in [10, 126, 127, 128, 100_000] {
        let mut body = br#"{"model":"m","messages":"#.to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.push(b'}');
        let got = rewrite("/v1/chat/completions", &body, MODEL, 100, false);
        // 128 levels at most, the body object included.
        assert_eq!(got.is_ok(), depth < 127, "depth {depth}");
    }
}

/// A peer's body of tiny values is refused past `MAX_JSON_VALUES` before it is parsed (it
/// would cost ~100× its size as `Value`s); one just under the bound costs a bounded amount.
#[test]
fn dense_bodies_are_bounded_before_parsing() {
    let body = |n: usize| format!(r#"{{"model":"{MODEL}","prompt":[{}0]}}"#, "[0],".repeat(n));
    let n = cocoon_proto::MAX_JSON_VALUES / 2 - 8;
    let under = body(n);
    let (got, peak) = peak_alloc(|| rewrite("/v1/completions", under.as_bytes(), MODEL, 16, false));
    assert!(got.is_ok(), "{:?}", got.err());
    assert!(
        peak < 64 << 20,
        "{peak} bytes for {} input bytes",
        under.len()
    );
    let over = body(n + 16);
    let (got, peak) = peak_alloc(|| rewrite("/v1/completions", over.as_bytes(), MODEL, 16, false));
    let err = got.expect_err("refused");
    assert!(err.contains("JSON values"), "{err}");
    assert!(peak < 4096, "refused without parsing: {peak} bytes");
}
