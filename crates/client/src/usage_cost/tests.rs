use super::*;
use serde_json::json;

fn cost() -> Cost {
    Cost {
        prompt_cost: 100,
        completion_cost: 250,
        total_cost: 350,
        adjusted_tokens: 17,
    }
}

fn usage_of(json: &[u8]) -> Value {
    serde_json::from_slice::<Value>(json).unwrap()["usage"].clone()
}

#[test]
fn json_body_gets_cost_fields_and_keeps_the_rest() {
    let body = br#"{"id":"x","choices":[{"message":{"content":"the \"usage\": {}"}}],"usage":{"prompt_tokens":3,"completion_tokens":5},"z":1}"#;
    let out = inject_json(body, &cost()).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens":3,"completion_tokens":5,"prompt_total_cost":100,"completion_total_cost":250,"total_cost":350})
    );
    assert_eq!(v["z"], 1);
    assert_eq!(v["choices"][0]["message"]["content"], "the \"usage\": {}");
    // Bytes outside usage are spliced through unchanged, key order kept.
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(r#"{"id":"x","choices""#));
    assert!(text.contains(r#"{"prompt_tokens":3,"completion_tokens":5,"prompt_total_cost":100"#));
    assert!(text.ends_with(r#","z":1}"#));
}

#[test]
fn json_edge_cases() {
    // Empty usage object, whitespace around.
    let out = inject_json(b" { \"usage\" : { } } ", &cost()).unwrap();
    assert_eq!(usage_of(&out)["total_cost"], 350);
    // Existing fields are replaced, not duplicated.
    let out = inject_json(br#"{"usage":{"total_cost":1,"prompt_tokens":2}}"#, &cost()).unwrap();
    let u = usage_of(&out);
    assert_eq!(
        (u["total_cost"].clone(), u["prompt_tokens"].clone()),
        (json!(350), json!(2))
    );
    assert_eq!(
        String::from_utf8(out)
            .unwrap()
            .matches("\"total_cost\"")
            .count(),
        1
    );
    // Nothing to do, or nothing safe to do.
    for body in [
        &br#"{"usage":null}"#[..],
        br#"{"choices":[]}"#,
        br#"{"nested":{"usage":{}}}"#,
        br#"[{"usage":{}}]"#,
        br#"{"usage":{"a":}"#,
        br#"{"usage""#,
        b"",
        b"{",
        br#"{"a":"\"#,
        b"not json",
        br#"{"usage":{]]]]"#,
    ] {
        assert!(
            inject_json(body, &cost()).is_none(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

fn sse(json: Value) -> String {
    format!("data: {json}\n\n")
}

fn stream_events() -> (String, String, String) {
    let content = sse(json!({"choices":[{"delta":{"content":"hi \"usage\":{}"}}],"usage":null}));
    let usage = sse(json!({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}));
    (content, usage, "data: [DONE]\n\n".to_string())
}

fn run(chunks: &[&[u8]], relay: &mut SseCostRelay) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&relay.push(Bytes::copy_from_slice(c)));
    }
    out
}

#[test]
fn sse_holds_usage_event_until_end_then_injects() {
    let (content, usage, done) = stream_events();
    let mut relay = SseCostRelay::new();
    let before = run(&[content.as_bytes()], &mut relay);
    assert_eq!(before, content.as_bytes(), "content chunks pass at once");
    let held = run(&[usage.as_bytes(), done.as_bytes()], &mut relay);
    assert!(held.is_empty(), "usage event and [DONE] wait for the cost");
    let rest = relay.finish(Some(&cost()));
    let text = String::from_utf8(rest.to_vec()).unwrap();
    assert!(text.ends_with("\n\ndata: [DONE]\n\n"));
    let data = text
        .strip_prefix("data: ")
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    let u = usage_of(data.as_bytes());
    assert_eq!(
        (u["prompt_tokens"].clone(), u["total_cost"].clone()),
        (json!(3), json!(350))
    );
    assert_eq!(u["prompt_total_cost"], 100);
    assert_eq!(u["completion_total_cost"], 250);
}

#[test]
fn sse_usage_event_split_across_chunks_any_way() {
    let (content, usage, done) = stream_events();
    let whole = format!("{content}{usage}{done}");
    let expected_prefix = content.clone();
    for cut1 in 1..whole.len() {
        // Two cuts: every split of the usage key, the data line and the terminator.
        for cut2 in [cut1, (cut1 + 7).min(whole.len()), whole.len()] {
            let b = whole.as_bytes();
            let mut relay = SseCostRelay::new();
            let mut out = run(&[&b[..cut1], &b[cut1..cut2], &b[cut2..]], &mut relay);
            assert!(
                expected_prefix.as_bytes().starts_with(&out)
                    || out.starts_with(expected_prefix.as_bytes()),
                "cut {cut1}/{cut2}"
            );
            assert!(
                out.len() <= expected_prefix.len(),
                "usage never leaks before the end"
            );
            out.extend_from_slice(&relay.finish(Some(&cost())));
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&expected_prefix));
            assert!(text.contains(r#""completion_tokens":5,"prompt_total_cost":100,"completion_total_cost":250,"total_cost":350}"#), "cut {cut1}/{cut2}: {text}");
            assert!(text.ends_with("data: [DONE]\n\n"));
        }
    }
}

#[test]
fn sse_error_mid_stream_flushes_held_unchanged() {
    let (content, usage, _) = stream_events();
    let mut relay = SseCostRelay::new();
    let half = usage.len() / 2;
    let mut out = run(
        &[
            content.as_bytes(),
            &usage.as_bytes()[..half],
            &usage.as_bytes()[half..],
        ],
        &mut relay,
    );
    assert_eq!(out, content.as_bytes());
    out.extend_from_slice(&relay.abort());
    assert_eq!(out, format!("{content}{usage}").as_bytes());

    // An incomplete event with no usage is flushed too.
    let mut relay = SseCostRelay::new();
    let out = run(&[b"data: {\"choices\":[]"], &mut relay);
    assert!(out.is_empty());
    assert_eq!(&relay.abort()[..], b"data: {\"choices\":[]");
}

#[test]
fn a_counted_usage_event_goes_before_done() {
    let (content, _, done) = stream_events();
    let mut relay = SseCostRelay::new();
    let mut out = run(&[content.as_bytes(), done.as_bytes()], &mut relay);
    let usage = cocoon_proto::Usage {
        prompt_tokens: 3,
        completion_tokens: 2,
        ..Default::default()
    };
    let event = crate::usage_cost::usage_event(true, "m", &usage, Some(&cost()));
    out.extend_from_slice(&relay.finish_with(Some(&cost()), Some(event.clone())));
    assert_eq!(out, [content.as_bytes(), &event, done.as_bytes()].concat());
    let json: serde_json::Value = serde_json::from_str(
        std::str::from_utf8(&event)
            .unwrap()
            .trim()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["usage"]["total_tokens"], 5);
    assert_eq!(json["choices"], serde_json::json!([]));
    assert!(json["usage"]["total_cost"].as_u64().is_some());
    // With the engine's own usage event in the stream, the counted one is not added.
    let (_, engine_usage, _) = stream_events();
    let mut relay = SseCostRelay::new();
    let mut out = run(&[engine_usage.as_bytes(), done.as_bytes()], &mut relay);
    out.extend_from_slice(&relay.finish_with(None, Some(event)));
    assert_eq!(out, format!("{engine_usage}{done}").as_bytes());
}

#[test]
fn sse_without_usage_or_cost_passes_through() {
    let (content, usage, done) = stream_events();
    let mut relay = SseCostRelay::new();
    let mut out = run(&[content.as_bytes(), done.as_bytes()], &mut relay);
    // Content passes at once; `[DONE]` waits for the end (a usage event may go before it).
    assert_eq!(out, content.as_bytes());
    out.extend_from_slice(&relay.finish(Some(&cost())));
    assert_eq!(out, format!("{content}{done}").as_bytes());

    let mut relay = SseCostRelay::new();
    let mut out = run(&[usage.as_bytes(), done.as_bytes()], &mut relay);
    out.extend_from_slice(&relay.finish(None));
    assert_eq!(out, format!("{usage}{done}").as_bytes());
}

#[test]
fn sse_crlf_terminators_and_unterminated_last_event() {
    let usage = "data: {\"usage\":{\"prompt_tokens\":1}}\r\n\r\n";
    let mut relay = SseCostRelay::new();
    assert!(run(&[usage.as_bytes()], &mut relay).is_empty());
    let text = String::from_utf8(relay.finish(Some(&cost())).to_vec()).unwrap();
    assert!(text.ends_with(",\"total_cost\":350}}\r\n\r\n"), "{text}");

    let mut relay = SseCostRelay::new();
    assert!(run(&[b"data:{\"usage\":{}}"], &mut relay).is_empty());
    let text = String::from_utf8(relay.finish(Some(&cost())).to_vec()).unwrap();
    assert_eq!(
        text,
        "data:{\"usage\":{\"prompt_total_cost\":100,\"completion_total_cost\":250,\"total_cost\":350}}"
    );
}

#[test]
fn chunks_without_usage_are_not_copied() {
    let mut relay = SseCostRelay::new();
    let chunk = Bytes::from_static(b"data: {\"choices\":[]}\n\n");
    let out = relay.push(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr(), "same buffer, no copy");
}

#[test]
fn running_usage_next_to_choices_is_not_held() {
    // vLLM's continuous_usage_stats: usage in every chunk; only the final one (no choices)
    // starts the hold.
    let running = sse(
        json!({"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}),
    );
    let last = sse(json!({"choices":[ ],"usage":{"prompt_tokens":3,"completion_tokens":2}}));
    let mut relay = SseCostRelay::new();
    let out = run(&[running.as_bytes(), running.as_bytes()], &mut relay);
    assert_eq!(out, format!("{running}{running}").as_bytes());
    assert!(run(&[last.as_bytes()], &mut relay).is_empty());
    let rest = relay.finish(Some(&cost()));
    let data = std::str::from_utf8(&rest)
        .unwrap()
        .strip_prefix("data: ")
        .unwrap()
        .trim_end();
    assert_eq!(usage_of(data.as_bytes())["total_cost"], 350);
    // No choices key at all, or choices null: also final.
    for body in [
        r#"{"usage":{}}"#,
        r#"{"choices":null,"usage":{}}"#,
        r#"{"choices": [ ] ,"usage":{}}"#,
    ] {
        let mut relay = SseCostRelay::new();
        assert!(
            relay
                .push(Bytes::from(format!("data: {body}\n\n")))
                .is_empty(),
            "{body}"
        );
    }
}

#[test]
fn an_endless_event_is_passed_on_not_buffered() {
    let mut relay = SseCostRelay::new();
    let big = Bytes::from(vec![b'x'; MAX_PENDING_EVENT + 1]);
    assert_eq!(relay.push(big.clone()).len(), big.len());
    assert!(relay.abort().is_empty());
}
