use super::*;

const SSE: &[u8] = b"data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\r\n\r\n\
data:{\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi \\\"usage\\\": 5\"}}],\"usage\":null}\n\n\
: keep-alive comment\n\n\
data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18,\
\"prompt_tokens_details\":{\"cached_tokens\":2},\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\r\n\r\n\
data: [DONE]\r\n\r\n";

const EXPECTED: Usage = Usage {
    prompt_tokens: 11,
    cached_tokens: 2,
    completion_tokens: 7,
    reasoning_tokens: 1,
};

const JSON: &[u8] = b"{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\
\"message\":{\"role\":\"assistant\",\"content\":\"text\"}}],\"usage\":{\"prompt_tokens\":11,\
\"completion_tokens\":7,\"total_tokens\":18,\"prompt_tokens_details\":{\"cached_tokens\":2},\
\"completion_tokens_details\":{\"reasoning_tokens\":1}}}";

fn scan(streaming: bool, parts: &[&[u8]]) -> Option<Usage> {
    let mut s = UsageScanner::new(streaming);
    for p in parts {
        s.feed(p);
    }
    s.finish()
}

#[test]
fn sse_split_at_every_byte() {
    assert_eq!(scan(true, &[SSE]), Some(EXPECTED));
    for i in 0..=SSE.len() {
        assert_eq!(
            scan(true, &[&SSE[..i], &SSE[i..]]),
            Some(EXPECTED),
            "split {i}"
        );
    }
    let bytes: Vec<&[u8]> = SSE.chunks(1).collect();
    assert_eq!(scan(true, &bytes), Some(EXPECTED));
}

#[test]
fn json_split_at_every_byte() {
    assert_eq!(scan(false, &[JSON]), Some(EXPECTED));
    for i in 0..=JSON.len() {
        assert_eq!(
            scan(false, &[&JSON[..i], &JSON[i..]]),
            Some(EXPECTED),
            "split {i}"
        );
    }
    let bytes: Vec<&[u8]> = JSON.chunks(1).collect();
    assert_eq!(scan(false, &bytes), Some(EXPECTED));
}

#[test]
fn details_optional_or_null() {
    let body =
        br#"{"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":null}}"#;
    let want = Usage {
        prompt_tokens: 3,
        completion_tokens: 4,
        ..Usage::default()
    };
    assert_eq!(scan(false, &[body]), Some(want));
}

#[test]
fn null_usage_ignored_and_last_wins() {
    let sse = b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n\
data: {\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":5}}\n\n\
data: {\"usage\" : null}\n\ndata: [DONE]\n\n";
    let got = scan(true, &[sse]).map(|u| (u.prompt_tokens, u.completion_tokens));
    assert_eq!(got, Some((2, 5)));
    assert_eq!(scan(true, &[b"data: {\"usage\":null}\n\n"]), None);
    assert_eq!(scan(false, &[b"{\"usage\":null}"]), None);
}

#[test]
fn unterminated_last_line_counts() {
    let sse = b"data: {\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}";
    assert_eq!(scan(true, &[sse]).map(|u| u.prompt_tokens), Some(9));
}

#[test]
fn overlong_line_skipped_then_recovers() {
    let mut s = UsageScanner::new(true);
    s.feed(b"data: {\"usage\":{\"prompt_tokens\":1}, \"pad\":\"");
    let pad = vec![b'a'; 1 << 20];
    for _ in 0..5 {
        s.feed(&pad);
    }
    assert!(s.buf.len() <= MAX_LINE_BYTES);
    s.feed(b"\"}\n\ndata: {\"usage\":{\"prompt_tokens\":2}}\n\n");
    assert_eq!(s.finish().map(|u| u.prompt_tokens), Some(2));
}

#[test]
fn oversized_body_gives_none() {
    let mut s = UsageScanner::new(false);
    s.feed(JSON);
    let pad = vec![b' '; 1 << 20];
    for _ in 0..17 {
        s.feed(&pad);
    }
    assert!(s.buf.is_empty());
    assert_eq!(s.finish(), None);
}

/// xorshift: deterministic randomness without a dev-dependency.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_input_never_panics() {
    let mut st = 0x9e37_79b9_7f4a_7c15_u64;
    let alphabet: &[u8] = b"data: {}[]\":,usage null 0123456789\r\n\\prompt_tokens\xff\x00";
    for round in 0..300 {
        let len = (rng(&mut st) % 2048) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng(&mut st);
                if round % 2 == 0 {
                    r as u8
                } else {
                    alphabet[(r % alphabet.len() as u64) as usize]
                }
            })
            .collect();
        for streaming in [true, false] {
            let mut s = UsageScanner::new(streaming);
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = ((rng(&mut st) % 64) as usize + 1).min(rest.len());
                s.feed(&rest[..n]);
                rest = &rest[n..];
            }
            let _ = s.finish();
        }
    }
}

#[test]
fn mutated_valid_input_never_panics() {
    let mut st = 42_u64;
    for _ in 0..500 {
        let mut input = SSE.to_vec();
        for _ in 0..4 {
            let i = (rng(&mut st) % input.len() as u64) as usize;
            input[i] = rng(&mut st) as u8;
        }
        let split = (rng(&mut st) % input.len() as u64) as usize;
        let _ = scan(true, &[&input[..split], &input[split..]]);
        let _ = scan(false, &[&input[..split], &input[split..]]);
    }
}

#[test]
fn collects_answer_text_from_streams_and_bodies() {
    let mut s = UsageScanner::with_text(true);
    s.feed(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Par\"}}]}\n\ndata: {\"choi");
    s.feed(b"ces\":[{\"delta\":{\"content\":\"is.\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    assert_eq!(s.finish_with_text(), (None, "Paris.".to_string()));
    let mut s = UsageScanner::with_text(false);
    s.feed(br#"{"choices":[{"message":{"role":"assistant","content":"Hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#);
    let (usage, text) = s.finish_with_text();
    assert_eq!(text, "Hi");
    assert_eq!(usage.unwrap().completion_tokens, 1);
    let mut s = UsageScanner::with_text(true);
    s.feed(b"data: {\"choices\":[{\"text\":\"abc\",\"index\":0}]}\n\n");
    assert_eq!(s.finish_with_text().1, "abc");
    // Without with_text nothing is collected.
    let mut s = UsageScanner::new(true);
    s.feed(b"data: {\"choices\":[{\"text\":\"abc\",\"index\":0}]}\n\n");
    assert_eq!(s.finish_with_text().1, "");
}

#[test]
fn sees_the_closing_done_line() {
    let mut s = UsageScanner::new(true);
    s.feed(b"data: {\"choices\":[]}\r\n\r\n");
    assert!(!s.saw_done());
    s.feed(b"data: [DO");
    s.feed(b"NE]\r\n\r\n");
    assert!(s.saw_done());
}
