//! Fuzzing the cost injection into answers (`cocoon_client::usage_cost`): `inject_json` on
//! whole bodies and `SseCostRelay` on streams, which see every byte a proxy relays to the app.
//! Properties:
//!
//! - nothing panics, on arbitrary bytes, SSE-shaped noise or mutated realistic answers;
//! - without a cost (`finish(None)`, `abort()`) the relay is the identity, however the
//!   stream is chunked, and with a cost its output does not depend on the chunking either;
//! - on realistic streams every event before the final usage event is released unchanged as
//!   soon as it is complete, and exactly the usage objects from it on (plus an unterminated
//!   last event) get `prompt_total_cost`, `completion_total_cost` and `total_cost`;
//! - `inject_json` changes only the top-level `usage` object, keeps valid JSON valid, and
//!   refuses (returns `None`) exactly when there is no top-level usage object.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-client --test fuzz_usage_cost` for a
//! longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

#[path = "../../../tests/fuzz/json.rs"]
mod json;

use bytes::Bytes;
use cocoon_client::usage_cost::{inject_json, SseCostRelay};
use cocoon_proto::Cost;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};
use support::{config, cuts, mutate, peak_alloc, split, total_alloc};

const FIELDS: [&str; 3] = ["prompt_total_cost", "completion_total_cost", "total_cost"];

fn cost() -> impl Strategy<Value = Cost> {
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(p, c, t, a)| Cost {
        prompt_cost: p,
        completion_cost: c,
        total_cost: t,
        adjusted_tokens: a,
    })
}

fn with_cost(usage: &Map<String, Value>, cost: &Cost) -> Map<String, Value> {
    let mut u = usage.clone();
    for (f, v) in FIELDS
        .iter()
        .zip([cost.prompt_cost, cost.completion_cost, cost.total_cost])
    {
        u.insert((*f).to_string(), v.into());
    }
    u
}

/// Pushes `chunks`; returns what was released along the way and the relay.
fn push_all(chunks: &[&[u8]]) -> (Vec<u8>, SseCostRelay) {
    let mut relay = SseCostRelay::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&relay.push(Bytes::copy_from_slice(c)));
    }
    (out, relay)
}

/// The relay's whole output for `data` in `chunks`, checking on the way that without a cost
/// it is the identity.
fn relay_all_ways(data: &[u8], cuts: &[Index], cost: &Cost) -> Vec<u8> {
    let chunks = split(data, cuts);
    let (mut out, relay) = push_all(&chunks);
    let mut aborted = out.clone();
    aborted.extend_from_slice(&push_all(&chunks).1.abort());
    assert_eq!(aborted, data, "abort must give back the stream unchanged");
    let mut plain = push_all(&chunks).0;
    plain.extend_from_slice(&push_all(&chunks).1.finish(None));
    assert_eq!(plain, data, "no cost must give back the stream unchanged");
    out.extend_from_slice(&relay.finish(Some(cost)));

    let (mut whole, relay) = push_all(&[data]);
    whole.extend_from_slice(&relay.finish(Some(cost)));
    assert_eq!(out, whole, "chunking changed the output");
    if data.len() <= 2048 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        let (mut one, relay) = push_all(&bytes);
        one.extend_from_slice(&relay.finish(Some(cost)));
        assert_eq!(one, whole, "byte-at-a-time changed the output");
    }
    whole
}

// ------------------------------------------------------------------ inject_json

fn usage_map() -> impl Strategy<Value = Map<String, Value>> {
    let keys = &[
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_total_cost",
        "total_cost",
        "usage",
    ];
    prop::collection::vec((json::string(keys), json::value(keys)), 0..5)
        .prop_map(|fields| fields.into_iter().collect())
}

/// A completion body: any object, with a usage object, a non-object usage, or none.
fn body() -> impl Strategy<Value = Value> {
    let keys = &["id", "choices", "usage", "message", "content", "model"];
    let usage = prop_oneof![
        3 => usage_map().prop_map(Value::Object).prop_map(Some),
        1 => json::value(keys).prop_map(Some),
        1 => Just(None),
    ];
    (json::object(keys, json::value(keys)), usage).prop_map(|(mut doc, usage)| {
        if let (Value::Object(o), Some(u)) = (&mut doc, usage) {
            o.insert("usage".into(), u);
        }
        doc
    })
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn inject_json_arbitrary_bytes(raw in support::bytes(512), cost in cost()) {
        if let Some(out) = inject_json(&raw, &cost) {
            let total = format!("\"total_cost\":{}", cost.total_cost);
            prop_assert!(out.windows(total.len()).any(|w| w == total.as_bytes()));
            prop_assert!(out.len() <= 8 * raw.len() + 256);
            if serde_json::from_slice::<Value>(&raw).is_ok() {
                prop_assert!(serde_json::from_slice::<Value>(&out).is_ok(), "broke valid JSON");
            }
        }
    }

    #[test]
    fn inject_json_matches_the_oracle(doc in body(), pretty in any::<bool>(), cost in cost()) {
        let raw = if pretty {
            serde_json::to_vec_pretty(&doc).unwrap()
        } else {
            serde_json::to_vec(&doc).unwrap()
        };
        let (out, peak) = peak_alloc(|| inject_json(&raw, &cost));
        support::assert_linear("inject_json", raw.len(), peak, 64, 4096);
        // What serde_json reads from the text (floats included) is what must come back.
        let seen: Map<String, Value> = serde_json::from_slice(&raw).unwrap();
        match (seen.get("usage"), out) {
            (Some(Value::Object(usage)), Some(out)) => {
                let got: Map<String, Value> =
                    serde_json::from_slice(&out).expect("output is a JSON object");
                let mut want = seen.clone();
                want.insert("usage".into(), Value::Object(with_cost(usage, &cost)));
                prop_assert!(
                    json::same(&Value::Object(got.clone()), &Value::Object(want.clone())),
                    "{:?} != {:?}", got, want
                );
            }
            (Some(Value::Object(_)), None) => prop_assert!(false, "usage object not found"),
            (_, Some(out)) => prop_assert!(false, "injected without a usage object: {:?}",
                String::from_utf8_lossy(&out)),
            (_, None) => {}
        }
    }

    #[test]
    fn inject_json_mutated_bodies(raw in json::mutated_text(body(), 6), cost in cost()) {
        let out = inject_json(&raw, &cost);
        if let (Some(out), Ok(_)) = (&out, serde_json::from_slice::<Value>(&raw)) {
            prop_assert!(serde_json::from_slice::<Value>(out).is_ok(), "broke valid JSON");
        }
    }
}

// ------------------------------------------------------------------ SSE relay

/// One SSE event of an OpenAI-compatible stream.
#[derive(Clone, Debug)]
enum Event {
    /// Content; the text may contain `usage` and SSE syntax (escaped in the JSON string).
    Delta(String),
    /// vLLM `continuous_usage_stats`: usage next to choices, not final.
    Running(Map<String, Value>),
    /// The final usage event (`choices` empty, null or absent; raw spacing variants).
    Final(Map<String, Value>, u8),
    /// A JSON split over two `data:` lines: left alone.
    MultiLine(Map<String, Value>),
    /// `event:` and `id:` lines before the data line.
    Named(Map<String, Value>),
    Done,
    Comment,
}

fn event() -> impl Strategy<Value = Event> {
    let small_usage = prop::collection::btree_map(
        prop::sample::select(&["prompt_tokens", "completion_tokens", "total_cost"][..]),
        (0u64..100).prop_map(Value::from),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>()
    });
    prop_oneof![
        4 => json::string(&["hi", "usage", "\"usage\":{}", "data: x\n\n", "\r\n\r\n"])
            .prop_map(Event::Delta),
        1 => small_usage.clone().prop_map(Event::Running),
        2 => (small_usage.clone(), 0u8..4).prop_map(|(u, v)| Event::Final(u, v)),
        1 => small_usage.clone().prop_map(Event::MultiLine),
        1 => small_usage.prop_map(Event::Named),
        1 => Just(Event::Done),
        1 => Just(Event::Comment),
    ]
}

/// An event as bytes: text before the payload, the payload (a JSON object whose usage the
/// relay may change), text after it.
struct Rendered {
    head: Vec<u8>,
    /// The payload's bytes and what they parse to.
    payload: Option<(Vec<u8>, Value)>,
    tail: Vec<u8>,
    /// Whether the relay holds the stream from this event on.
    is_final: bool,
}

fn render(e: &Event, crlf: bool) -> Rendered {
    let nl = if crlf { "\r\n" } else { "\n" };
    let data = |v: Value, head: &str| Rendered {
        head: format!("{head}data: ").into_bytes(),
        payload: Some((serde_json::to_vec(&v).unwrap(), v)),
        tail: format!("{nl}{nl}").into_bytes(),
        is_final: false,
    };
    let literal = |text: String| Rendered {
        head: text.into_bytes(),
        payload: None,
        tail: Vec::new(),
        is_final: false,
    };
    match e {
        Event::Delta(t) => data(
            json!({"choices":[{"delta":{"content":t}}],"usage":null}),
            "",
        ),
        Event::Running(u) => data(json!({"choices":[{"delta":{}}],"usage":u}), ""),
        Event::Final(u, variant) => {
            let v = match variant {
                0 => json!({"id":"x","choices":[],"usage":u}),
                1 => json!({"id":"x","choices":null,"usage":u}),
                _ => json!({"id":"x","usage":u}),
            };
            let mut r = data(v, "");
            if *variant == 3 {
                // Spacing a serializer would not produce.
                let text = format!(
                    "{{\"choices\": [ ] , \"usage\" : {} }}",
                    Value::Object(u.clone())
                );
                let v = serde_json::from_str(&text).unwrap();
                r.payload = Some((text.into_bytes(), v));
            }
            r.is_final = true;
            r
        }
        Event::MultiLine(u) => literal(format!(
            "data: {{\"choices\":[],{nl}data: \"usage\":{}}}{nl}{nl}",
            Value::Object(u.clone())
        )),
        Event::Named(u) => data(
            json!({"choices":[{"delta":{}}],"usage":u}),
            &format!("event: message{nl}id: 7{nl}"),
        ),
        Event::Done => literal(format!("data: [DONE]{nl}{nl}")),
        Event::Comment => literal(format!(": keep-alive{nl}{nl}")),
    }
}

fn stream() -> impl Strategy<Value = (Vec<Event>, Vec<bool>, bool)> {
    (
        prop::collection::vec(event(), 0..8),
        prop::collection::vec(any::<bool>(), 8),
        any::<bool>(),
    )
}

/// Renders the stream; returns its bytes and the checker of the relay's output.
fn build(events: &[Event], crlf: &[bool], unterminated: bool) -> (Vec<u8>, Vec<Rendered>) {
    let mut parts: Vec<Rendered> = events
        .iter()
        .zip(crlf)
        .map(|(e, c)| render(e, *c))
        .collect();
    if unterminated {
        if let Some(last) = parts.last_mut() {
            if last.payload.is_some() {
                last.tail.clear();
            }
        }
    }
    let mut data = Vec::new();
    for p in &parts {
        data.extend_from_slice(&p.head);
        if let Some((bytes, _)) = &p.payload {
            data.extend_from_slice(bytes);
        }
        data.extend_from_slice(&p.tail);
    }
    (data, parts)
}

/// Walks the relay's output event by event: literal bytes must match, payloads must parse to
/// the expected value (with the cost in `usage` from the first final event on, and in an
/// unterminated last event).
fn check_stream(out: &[u8], parts: &[Rendered], cost: &Cost) {
    let mut rest = out;
    let mut holding = false;
    for (i, p) in parts.iter().enumerate() {
        holding |= p.is_final;
        let last_unterminated = i + 1 == parts.len() && p.payload.is_some() && p.tail.is_empty();
        let rest_head = rest.strip_prefix(&p.head[..]);
        assert!(rest_head.is_some(), "event {i}: head differs");
        rest = rest_head.unwrap();
        if let Some((_, v)) = &p.payload {
            let end = rest
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(rest.len());
            let got: Value = serde_json::from_slice(&rest[..end]).expect("payload stays JSON");
            let mut want = v.clone();
            if holding || last_unterminated {
                if let Some(Value::Object(u)) = v.get("usage") {
                    want["usage"] = Value::Object(with_cost(u, cost));
                }
            }
            assert_eq!(got, want, "event {i}");
            rest = &rest[end..];
        }
        let after = rest.strip_prefix(&p.tail[..]);
        assert!(after.is_some(), "event {i}: terminator differs");
        rest = after.unwrap();
    }
    assert!(rest.is_empty(), "trailing output");
}

/// Bytes that are mostly SSE and JSON syntax, to reach the relay's scanners.
fn sse_noise() -> impl Strategy<Value = Vec<u8>> {
    let tokens = &[
        "data:",
        "data: ",
        "\n",
        "\r\n",
        "\n\n",
        "\r",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\"usage\"",
        "\"usage\":{}",
        "\"choices\":[]",
        "null",
        "x",
        " ",
        "event: e",
    ];
    prop::collection::vec(prop::sample::select(&tokens[..]), 0..40)
        .prop_map(|ts| ts.concat().into_bytes())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn relay_arbitrary_bytes(data in support::bytes(400), cuts in cuts(), cost in cost()) {
        relay_all_ways(&data, &cuts, &cost);
    }

    #[test]
    fn relay_sse_noise(data in sse_noise(), cuts in cuts(), cost in cost()) {
        relay_all_ways(&data, &cuts, &cost);
    }

    #[test]
    fn relay_streams_match_the_oracle(
        (events, crlf, unterminated) in stream(),
        cuts in cuts(),
        cost in cost(),
    ) {
        let (data, parts) = build(&events, &crlf, unterminated);
        let out = relay_all_ways(&data, &cuts, &cost);
        check_stream(&out, &parts, &cost);
        // Events before the final one (or `[DONE]`, before which a usage event counted by
        // the worker may have to go) are released by `push`, not held until the end.
        let released = push_all(&split(&data, &cuts)).0;
        let is_done = |p: &Rendered| p.payload.is_none() && p.head.starts_with(b"data: [DONE]");
        let before_final: usize = parts
            .iter()
            .take_while(|p| !p.is_final && !is_done(p))
            .map(|p| {
                p.head.len() + p.payload.as_ref().map_or(0, |(b, _)| b.len()) + p.tail.len()
            })
            .sum();
        if parts.iter().any(|p| p.is_final || is_done(p)) || !unterminated {
            prop_assert_eq!(released.len(), before_final);
        }
        prop_assert_eq!(&released[..], &data[..released.len()]);
    }

    #[test]
    fn relay_mutated_streams(
        (events, crlf, unterminated) in stream(),
        edits in json::edits(6),
        cuts in cuts(),
        cost in cost(),
    ) {
        let (data, _) = build(&events, &crlf, unterminated);
        relay_all_ways(&mutate(&data, &edits), &cuts, &cost);
    }
}

// ------------------------------------------------------------------ regression corpus

/// Streams that once looked risky for the scanners (terminator runs, escapes at chunk ends,
/// mismatched brackets, a final event without a terminator).
const STREAM_CORPUS: &[&[u8]] = &[
    b"",
    b"\n",
    b"\n\n\n",
    b"\n\r\n\n",
    b"\r\n\r\n\r\n",
    b"data:",
    b"data: {\"usage\":{}}",
    b"data: {\"usage\":{}}\n",
    b"data: {\"usage\":{}}\n\r\n",
    b"\n\n\ndata: {\"usage\":{}}\n\n",
    b"data: {\"usage\":{]]]]}\n\n",
    b"data: {\"usage\":{\"a\":\"\\\"}\n\n",
    b"data: {\"usage\":{\"a\":\"\\\\\"}}\n\n",
    b"data: {\"usage\":{}}\n\ndata: {\"usage\":{}}\n\n",
    b"data: {\"usage\":{}, \"choices\":[1]}\n\ndata: {\"choices\":[ ],\"usage\":{}}\n\n",
    b"data: {\"choices\":[],\ndata: \"usage\":{}}\n\n",
    b"data:{\"usage\":{}}\r\n\r\ndata: [DONE]\r\n\r\n",
    b"data: {\"usage\"\n\n:{}}\n\n",
    b"data: {\"usage\":{\"total_cost\":1,\"total_cost\":2}}\n\n",
    b"data: {\"usage\":1e999}\n\n",
    b"data: {\"usage\":{\"x\":\"\xff\"}}\n\n",
    b"data: {\"\\u0075sage\":{}}\n\n",
    b"data: {\"usage\":{}}\n\n\xff\xfe",
];

#[test]
fn stream_corpus() {
    let cost = Cost {
        prompt_cost: 1,
        completion_cost: 2,
        total_cost: 3,
        adjusted_tokens: 4,
    };
    for data in STREAM_CORPUS {
        // Every single cut point, and every pair of adjacent cuts.
        for cut in 0..=data.len() {
            let chunks = [&data[..cut], &data[cut..]];
            let (mut out, relay) = push_all(&chunks);
            out.extend_from_slice(&relay.finish(Some(&cost)));
            let (mut whole, relay) = push_all(&[data]);
            whole.extend_from_slice(&relay.finish(Some(&cost)));
            assert_eq!(
                out,
                whole,
                "{:?} cut at {cut}",
                String::from_utf8_lossy(data)
            );
        }
        relay_all_ways(data, &[], &cost);
    }
}

/// Bodies that once looked risky for `inject_json`, and whether a usage object is found.
const BODY_CORPUS: &[(&[u8], bool)] = &[
    (b"", false),
    (b"{", false),
    (b"{\"usage\":{}}", true),
    (b"{\"usage\":{} ", true),
    (b"{\"usage\":{}}garbage", true),
    (b"{\"usage\":{ }}", true),
    (b"{\"usage\":{\"a\":1 }}", true),
    (b"{\"usage\":{\"total_cost\":1.5e300}}", true),
    (b"{\"usage\":{\"a\":1,\"a\":2}}", true),
    (b"{\"a\":\"\\\"usage\\\":{}\",\"usage\":{}}", true),
    (b"{\"a\":{\"usage\":{}}}", false),
    (b"{\"usage\":[]}", false),
    (b"{\"usage\":\"{}\"}", false),
    (b"{\"usage\":{]}", false),
    (b"{\"usage\":{\"a\":}}", false),
    (b"{\"a\":1 2,\"usage\":{}}", false),
    (b"{\"\\u0075sage\":{}}", false),
    (b"{\"usage\":{\"x\":\"\xff\"}}", false),
];

#[test]
fn body_corpus() {
    let cost = Cost {
        prompt_cost: 1,
        completion_cost: 2,
        total_cost: 3,
        adjusted_tokens: 4,
    };
    for (body, found) in BODY_CORPUS {
        let out = inject_json(body, &cost);
        assert_eq!(out.is_some(), *found, "{:?}", String::from_utf8_lossy(body));
    }
    // Deep nesting before the usage key: the scanner is iterative, serde never sees it.
    for depth in [200, 100_000] {
        let mut body = b"{\"a\":".to_vec();
        body.extend(std::iter::repeat_n(b'[', depth));
        body.extend(std::iter::repeat_n(b']', depth));
        body.extend_from_slice(b",\"usage\":{}}");
        assert!(inject_json(&body, &cost).is_some(), "depth {depth}");
    }
}

/// What one push may cost today: a copy of the pending (incomplete) event plus the chunk,
/// bounded by the 4 MiB pending-event limit, never the whole stream.
#[test]
fn pending_event_memory_is_bounded() {
    const LIMIT: usize = 4 << 20; // MAX_PENDING_EVENT
    let mut relay = SseCostRelay::new();
    let chunk = Bytes::from(vec![b'x'; 1 << 20]);
    let (released, peak) = peak_alloc(|| {
        (0..12)
            .map(|_| relay.push(chunk.clone()).len())
            .sum::<usize>()
    });
    assert!(
        released >= 12 * chunk.len() - LIMIT,
        "an endless event is passed on"
    );
    assert!(peak <= 2 * LIMIT + (2 << 20), "peak {peak}");
}

/// FIXED (was a known issue): `SseCostRelay::push` re-copied and re-scanned the
/// whole pending event on every chunk (`crates/client/src/usage_cost.rs`, `push`: the
/// `BytesMut` join of `tail` and `chunk`, then `complete_events_end` over all of it). An event
/// that arrives in small chunks therefore costs O(event² / chunk) work, up to the 4 MiB
/// pending-event limit per chunk: a 4 MiB event in 1-byte chunks was ~8 TiB of copying. The
/// pending event now grows in place and only new bytes are scanned; this test asserts it.
#[test]
fn pending_event_work_is_linear() {
    let size = 256 << 10;
    let chunk = 256;
    let data = vec![b'x'; size];
    let (_, copied) = total_alloc(|| {
        let mut relay = SseCostRelay::new();
        for c in data.chunks(chunk) {
            relay.push(Bytes::copy_from_slice(c));
        }
        relay.abort()
    });
    assert!(
        copied <= 16 * size,
        "{copied} bytes allocated for a {size}-byte event"
    );
}
