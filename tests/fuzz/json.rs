//! JSON strategies for the fuzz tests of crates that decode JSON (included by path next to
//! `support.rs`, which it uses as `crate::support`).
#![allow(dead_code)]

use crate::support::{mutate, mutation, Mutation};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value};

/// Numbers on the edges of what decoders accept: sign, u32/u64/i64 limits, fractions,
/// exponents, huge and tiny magnitudes.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // non-finite becomes null
        prop::sample::select(vec![
            0u64,
            1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![-1i64, i64::MIN]).prop_map(Value::from),
        prop::sample::select(vec![0.5f64, -0.0, 1e-300, 1e300, 3600.0, 3600.000001, 2.5])
            .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

/// Short strings: the given keys (so values can be what a decoder looks for), escapes,
/// non-ASCII and arbitrary text.
pub fn string(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(words).prop_map(str::to_string),
        2 => "[ -~]{0,12}",
        1 => "\\PC{0,8}",
        1 => prop::sample::select(vec!["", "\"", "\\", "\u{0}", "é", "\u{10ffff}", "data: x\n\n"])
            .prop_map(str::to_string),
    ]
}

/// Arbitrary JSON values whose object keys are mostly `keys`, so generated documents hit the
/// fields a decoder reads, with every type in every position.
pub fn value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string(keys).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            object(keys, inner),
        ]
    })
}

/// An object over `keys` (plus the odd other key) with values from `values`.
pub fn object(
    keys: &'static [&'static str],
    values: impl Strategy<Value = Value>,
) -> impl Strategy<Value = Value> {
    prop::collection::vec((string(keys), values), 0..7)
        .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<String, Value>>()))
}

/// Byte sequences that matter to JSON scanners and parsers.
pub const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "null",
    "true",
    "\"usage\"",
    "\"usage\":",
    "\"usage\":{}",
    "-",
    "0",
    "1e999",
    "-1",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "é",
    " ",
    "\n",
    "\r\n",
    "\n\n",
    "data:",
];

/// Byte edits plus insertions of JSON tokens.
pub fn edits(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    let token = (any::<Index>(), prop::sample::select(TOKENS))
        .prop_map(|(i, t)| Mutation::Insert(i, t.as_bytes().to_vec()));
    prop::collection::vec(prop_oneof![2 => mutation(), 1 => token], 1..=max)
}

/// A document from `docs`, serialized compactly or pretty, then edited.
pub fn mutated_text(
    docs: impl Strategy<Value = Value>,
    max_edits: usize,
) -> impl Strategy<Value = Vec<u8>> {
    (docs, any::<bool>(), edits(max_edits)).prop_map(|(doc, pretty, edits)| {
        let text = if pretty {
            serde_json::to_vec_pretty(&doc)
        } else {
            serde_json::to_vec(&doc)
        }
        .expect("a Value always serializes");
        mutate(&text, &edits)
    })
}

/// Equal, except that floats may differ in their last bits: serde_json (without its
/// `float_roundtrip` feature) parses long decimals to a neighbouring double, so a document
/// that is parsed and re-serialized may carry e.g. `-3.848085690987766e-162` for
/// `-3.8480856909877667e-162`.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
