//! Fuzzing the usage scanner (`cocoon_engine::usage`), which reads every byte an engine sends:
//! SSE `data:` lines and plain JSON bodies, in chunks split anywhere. Properties:
//!
//! - nothing panics, on arbitrary bytes or on mutated realistic streams;
//! - the result does not depend on how the stream is chunked;
//! - on well-formed streams it is the last non-null top-level `usage` (an independent oracle);
//! - memory stays bounded: overlong lines and oversized bodies are dropped, not buffered.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-engine --test fuzz_usage` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

#[path = "../../../tests/fuzz/json.rs"]
mod json;

use cocoon_engine::usage::{MAX_BODY_BYTES, MAX_LINE_BYTES};
use cocoon_engine::{Usage, UsageScanner};
use proptest::prelude::*;
use serde_json::{json, Value};
use support::{assert_linear, config, cuts, mutate, peak_alloc, split};

fn scan(streaming: bool, parts: &[&[u8]]) -> Option<Usage> {
    let mut s = UsageScanner::new(streaming);
    for p in parts {
        s.feed(p);
    }
    s.finish()
}

/// The same stream fed whole, in the given chunks, and one byte at a time must agree.
fn scan_all_ways(streaming: bool, data: &[u8], cuts: &[proptest::sample::Index]) -> Option<Usage> {
    let whole = scan(streaming, &[data]);
    let chunked = scan(streaming, &split(data, cuts));
    assert_eq!(whole, chunked, "chunking changed the result");
    if data.len() <= 4096 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(
            whole,
            scan(streaming, &bytes),
            "byte-at-a-time changed the result"
        );
    }
    whole
}

// ------------------------------------------------------------------ oracle

/// Independent reading of a usage object: OpenAI's field names, absent = 0.
fn usage_of(v: &Value) -> Option<Usage> {
    let u = v.as_object()?.get("usage")?.as_object()?;
    let field = |obj: Option<&Value>, k: &str| obj.and_then(|o| o.get(k)).and_then(Value::as_u64);
    Some(Usage {
        prompt_tokens: field(Some(&Value::Object(u.clone())), "prompt_tokens").unwrap_or(0),
        completion_tokens: field(Some(&Value::Object(u.clone())), "completion_tokens").unwrap_or(0),
        cached_tokens: field(u.get("prompt_tokens_details"), "cached_tokens").unwrap_or(0),
        reasoning_tokens: field(u.get("completion_tokens_details"), "reasoning_tokens")
            .unwrap_or(0),
    })
}

// ------------------------------------------------------------------ realistic streams

/// One SSE event an OpenAI-compatible engine may send.
#[derive(Clone, Debug)]
enum Event {
    /// A content delta; the text may itself contain `"usage":` (escaped inside a string).
    Delta(String),
    /// A chunk with `"usage": null` (vLLM sends it on every chunk with include_usage).
    NullUsage,
    /// The final usage chunk.
    Usage(Value),
    /// A `usage` object that is not top-level (inside choices): must not count.
    NestedUsage(Value),
    Done,
    Comment,
}

fn usage_object() -> impl Strategy<Value = Value> {
    let n = prop_oneof![
        Just(None),
        any::<u64>().prop_map(Some),
        (0u64..1000).prop_map(Some)
    ];
    let details = |k: &'static str| {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            (0u64..1000).prop_map(move |v| Some(json!({ k: v }))),
            Just(Some(json!({}))),
        ]
    };
    (
        n.clone(),
        n,
        details("cached_tokens"),
        details("reasoning_tokens"),
    )
        .prop_map(|(p, c, pd, cd)| {
            let mut u = serde_json::Map::new();
            if let Some(p) = p {
                u.insert("prompt_tokens".into(), p.into());
            }
            if let Some(c) = c {
                u.insert("completion_tokens".into(), c.into());
                u.insert("total_tokens".into(), c.into());
            }
            if let Some(d) = pd {
                u.insert("prompt_tokens_details".into(), d);
            }
            if let Some(d) = cd {
                u.insert("completion_tokens_details".into(), d);
            }
            Value::Object(u)
        })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => json::string(&["hi", "\"usage\": 5", "usage", "data: {\"usage\":{}}", "\n\n"])
            .prop_map(Event::Delta),
        2 => Just(Event::NullUsage),
        2 => usage_object().prop_map(Event::Usage),
        1 => usage_object().prop_map(Event::NestedUsage),
        1 => Just(Event::Done),
        1 => Just(Event::Comment),
    ]
}

/// Renders events as an SSE stream: `data:` with or without a space, LF or CRLF line ends;
/// returns the stream and the usage the oracle expects.
fn render(events: &[Event], space: bool, crlf: bool) -> (Vec<u8>, Option<Usage>) {
    let nl: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::new();
    let mut expected = None;
    for e in events {
        let data = match e {
            Event::Delta(text) => {
                json!({"id":"x","choices":[{"delta":{"content":text}}],"usage":null})
            }
            Event::NullUsage => json!({"id":"x","choices":[],"usage":null}),
            Event::Usage(u) => json!({"id":"x","choices":[],"usage":u}),
            Event::NestedUsage(u) => json!({"id":"x","choices":[{"usage":u}],"usage":null}),
            Event::Done => {
                out.extend_from_slice(b"data: [DONE]");
                out.extend_from_slice(nl);
                out.extend_from_slice(nl);
                continue;
            }
            Event::Comment => {
                out.extend_from_slice(b": keep-alive");
                out.extend_from_slice(nl);
                out.extend_from_slice(nl);
                continue;
            }
        };
        if let Some(u) = usage_of(&data) {
            expected = Some(u);
        }
        out.extend_from_slice(if space { b"data: " } else { b"data:" });
        out.extend_from_slice(&serde_json::to_vec(&data).unwrap());
        out.extend_from_slice(nl);
        out.extend_from_slice(nl);
    }
    (out, expected)
}

fn stream() -> impl Strategy<Value = (Vec<u8>, Option<Usage>)> {
    (
        prop::collection::vec(event(), 0..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(events, space, crlf)| render(&events, space, crlf))
}

/// A non-streaming completion body: any JSON object, sometimes with a usage object.
fn body() -> impl Strategy<Value = Value> {
    let keys = &[
        "id", "object", "choices", "usage", "model", "message", "content",
    ];
    (
        json::value(keys),
        prop::option::of(usage_object()),
        any::<bool>(),
    )
        .prop_map(|(v, usage, nested)| {
            let mut obj = match v {
                Value::Object(o) => o,
                other => [("choices".to_string(), other)].into_iter().collect(),
            };
            match (usage, nested) {
                (Some(u), false) => {
                    obj.insert("usage".into(), u);
                }
                (Some(u), true) => {
                    obj.insert("choices".into(), json!([{ "usage": u }]));
                    obj.remove("usage");
                }
                (None, _) => {}
            }
            Value::Object(obj)
        })
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_bytes_any_chunking(
        data in support::bytes(600),
        cuts in cuts(),
        streaming in any::<bool>(),
    ) {
        scan_all_ways(streaming, &data, &cuts);
    }

    #[test]
    fn sse_streams_match_the_oracle_under_any_chunking(
        (data, expected) in stream(),
        cuts in cuts(),
    ) {
        prop_assert_eq!(scan_all_ways(true, &data, &cuts), expected);
        // Cut without the final newline: the last line still counts.
        let trimmed = data.strip_suffix(b"\n\n").or_else(|| data.strip_suffix(b"\r\n\r\n"));
        if let Some(t) = trimmed {
            prop_assert_eq!(scan_all_ways(true, t, &cuts), expected);
        }
    }

    #[test]
    fn mutated_sse_streams_any_chunking(
        (data, _) in stream(),
        edits in json::edits(6),
        cuts in cuts(),
    ) {
        scan_all_ways(true, &mutate(&data, &edits), &cuts);
    }

    #[test]
    fn json_bodies_match_the_oracle_under_any_chunking(
        doc in body(),
        pretty in any::<bool>(),
        cuts in cuts(),
    ) {
        let text = if pretty {
            serde_json::to_vec_pretty(&doc).unwrap()
        } else {
            serde_json::to_vec(&doc).unwrap()
        };
        prop_assert_eq!(scan_all_ways(false, &text, &cuts), usage_of(&doc));
    }

    #[test]
    fn mutated_json_bodies_any_chunking(
        text in json::mutated_text(body(), 6),
        cuts in cuts(),
        streaming in any::<bool>(),
    ) {
        scan_all_ways(streaming, &text, &cuts);
    }

    /// Work and memory are linear in the input: the scanner holds at most one line (or the
    /// body) plus the parse of a `usage` object.
    #[test]
    fn memory_is_linear(data in support::bytes(2000), streaming in any::<bool>()) {
        let (_, peak) = peak_alloc(|| scan(streaming, &[&data]));
        assert_linear("usage scan", data.len(), peak, 4, 4096);
    }
}

// ------------------------------------------------------------------ regression corpus

/// Tricky inputs, with what the scanner must say (`None` = no usage).
const CORPUS: &[(bool, &[u8], Option<u64>)] = &[
    (true, b"", None),
    (true, b"\n", None),
    (true, b"\r", None),
    (true, b"data:", None),
    (true, b"data: ", None),
    (true, b"data: {\"usage\":", None),
    (true, b"data: {\"usage\":}\n\n", None),
    (true, b"data: {\"usage\":{}}\n\n", Some(0)),
    (
        true,
        b"data: {\"usage\" : {\"prompt_tokens\":3}}\r",
        Some(3),
    ),
    (true, b"data:{\"usage\":{\"prompt_tokens\":3}}", Some(3)),
    (true, b"data :{\"usage\":{\"prompt_tokens\":3}}\n", None),
    (true, b" data:{\"usage\":{\"prompt_tokens\":3}}\n", None),
    (true, b"data: {\"usage\":nul}\n", None),
    (true, b"data: {\"usage\":null}\n", None),
    (true, b"data: {\"usage\":{\"prompt_tokens\":-1}}\n", None),
    (true, b"data: {\"usage\":{\"prompt_tokens\":1.0}}\n", None),
    (
        true,
        b"data: {\"usage\":{\"prompt_tokens\":18446744073709551616}}\n",
        None,
    ),
    (
        true,
        b"data: {\"usage\":{\"prompt_tokens\":18446744073709551615}}\n",
        Some(u64::MAX),
    ),
    // Duplicate key: serde refuses the document, so the line carries no usage.
    (
        true,
        b"data: {\"usage\":{\"prompt_tokens\":1},\"usage\":{\"prompt_tokens\":2}}\n",
        None,
    ),
    // A later malformed usage line does not erase an earlier good one.
    (
        true,
        b"data: {\"usage\":{\"prompt_tokens\":4}}\n\ndata: {\"usage\":{\"prompt_tokens\":\n\n",
        Some(4),
    ),
    (
        true,
        b"data: {\"x\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":9}\"}\n",
        None,
    ),
    (
        true,
        b"data: {\"choices\":[{\"usage\":{\"prompt_tokens\":9}}],\"usage\":null}\n",
        None,
    ),
    (
        true,
        b"data: \xff\xfe{\"usage\":{\"prompt_tokens\":9}}\n",
        None,
    ),
    // serde skips unknown fields without validating their UTF-8: the usage still counts.
    (
        true,
        b"data: {\"usage\":{\"prompt_tokens\":9,\"x\":\"\xff\"}}\n",
        Some(9),
    ),
    (true, b"\n\n\r\n\r\r\ndata: [DONE]\r\n", None),
    (false, b"", None),
    (false, b"{", None),
    (false, b"{\"usage\":{\"completion_tokens\":7}}", Some(0)),
    (false, b"data: {\"usage\":{\"prompt_tokens\":3}}", None),
    (false, b"{\"usage\":{\"prompt_tokens\":3}} trailing", None),
    (false, b"  {\"usage\":{\"prompt_tokens\":3}}\n\n", Some(3)),
];

#[test]
fn corpus() {
    for (i, (streaming, data, prompt)) in CORPUS.iter().enumerate() {
        let got = scan_all_ways(*streaming, data, &[]);
        assert_eq!(got.map(|u| u.prompt_tokens), *prompt, "corpus entry {i}");
    }
}

/// Deep nesting next to a valid usage: serde skips ignored fields iteratively (no recursion, no
/// stack overflow), so the usage still counts; deep nesting inside `usage` hits serde's recursion
/// limit and the line counts as no usage.
#[test]
fn deep_nesting_never_overflows_the_stack() {
    for depth in [100, 127, 128, 129, 200, 1000, 100_000] {
        let mut line = b"data: {\"usage\":{\"prompt_tokens\":1},\"x\":".to_vec();
        line.extend(std::iter::repeat_n(b'[', depth));
        line.extend(std::iter::repeat_n(b']', depth));
        line.extend_from_slice(b"}\n");
        let got = scan_all_ways(true, &line, &[]);
        assert_eq!(
            got.map(|u| u.prompt_tokens),
            Some(1),
            "outside usage, depth {depth}"
        );

        let mut line = b"data: {\"usage\":{\"prompt_tokens\":1,\"x\":".to_vec();
        line.extend(std::iter::repeat_n(b'{', depth).flat_map(|b| [b, b'"', b'k', b'"', b':']));
        line.extend_from_slice(b"0");
        line.extend(std::iter::repeat_n(b'}', depth));
        line.extend_from_slice(b"}}\n");
        let _ = scan_all_ways(true, &line, &[]);
    }
}

/// A line of exactly `MAX_LINE_BYTES` counts, one byte more is dropped, however it is chunked;
/// either way nothing close to the whole stream is buffered.
#[test]
fn line_limit_is_exact_and_chunking_independent() {
    let line = |len: usize| {
        let head = b"data: {\"usage\":{\"prompt_tokens\":5},\"pad\":\"";
        let mut l = head.to_vec();
        l.resize(len - 2, b'a');
        l.extend_from_slice(b"\"}");
        assert_eq!(l.len(), len);
        l
    };
    for (len, want) in [(MAX_LINE_BYTES, Some(5)), (MAX_LINE_BYTES + 1, None)] {
        let mut data = line(len);
        data.push(b'\n');
        for chunk in [usize::MAX, 1 << 16, 4093] {
            let parts: Vec<&[u8]> = data.chunks(chunk.min(data.len())).collect();
            let (got, peak) = peak_alloc(|| scan(true, &parts));
            assert_eq!(
                got.map(|u| u.prompt_tokens),
                want,
                "len {len} chunk {chunk}"
            );
            // One line buffer plus serde's parse of the usage object, never the stream twice.
            assert!(peak <= 2 * MAX_LINE_BYTES + (1 << 16), "peak {peak}");
        }
    }
}

/// An endless line is dropped (memory stays at one line), and the next line still counts.
#[test]
fn endless_line_memory_is_bounded() {
    let mut s = UsageScanner::new(true);
    let pad = vec![b'x'; 1 << 16];
    let (_, peak) = peak_alloc(|| {
        s.feed(b"data: {\"usage\":{\"prompt_tokens\":1},\"pad\":\"");
        for _ in 0..(3 * MAX_LINE_BYTES / pad.len()) {
            s.feed(&pad);
        }
    });
    assert!(peak <= 2 * MAX_LINE_BYTES, "peak {peak}");
    s.feed(b"\"}\ndata: {\"usage\":{\"prompt_tokens\":2}}\n");
    assert_eq!(s.finish().map(|u| u.prompt_tokens), Some(2));
}

/// A body over `MAX_BODY_BYTES` gives no usage and releases its buffer.
#[test]
fn oversized_body_memory_is_bounded() {
    let mut s = UsageScanner::new(false);
    let pad = vec![b' '; 1 << 20];
    let (_, peak) = peak_alloc(|| {
        s.feed(b"{\"usage\":{\"prompt_tokens\":1}}");
        for _ in 0..(MAX_BODY_BYTES / pad.len() + 2) {
            s.feed(&pad);
        }
    });
    assert!(peak <= 2 * MAX_BODY_BYTES, "peak {peak}");
    let (got, after) = peak_alloc(|| s.finish());
    assert_eq!(got, None);
    assert!(after < 4096, "finish allocated {after}");
}
