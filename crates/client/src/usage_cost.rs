//! Adds what a request cost (nanoTON, from the proxy's `AnswerEnd.cost`) to the `usage`
//! object of the completion the app receives: `prompt_total_cost`, `completion_total_cost`
//! and `total_cost` (DESIGN §4, "A request").
//!
//! Only the `usage` object is touched: the rest of the body is spliced through byte for
//! byte. For streams, chunks pass through untouched (no copy, no parse) until the SSE event
//! with the final usage (a non-null `usage` object, no choices); that event and everything
//! after it are held back until the cost arrives with the end of the answer, then released
//! with the fields injected. Only events whose bytes contain `"usage"` are looked at.

use bytes::{Bytes, BytesMut};
use cocoon_proto::Cost;
use serde_json::{Map, Value};

const USAGE_KEY: &[u8] = b"\"usage\"";
const DONE_MARK: &[u8] = b"[DONE]";
/// Longest incomplete event kept waiting for its end.
const MAX_PENDING_EVENT: usize = 4 * 1024 * 1024;
const FIELDS: [&str; 3] = ["prompt_total_cost", "completion_total_cost", "total_cost"];

fn values(cost: &Cost) -> [u64; 3] {
    [cost.prompt_cost, cost.completion_cost, cost.total_cost]
}

/// A JSON document (a non-streaming completion, or one SSE event's data) with the cost
/// fields added to its top-level `usage` object; `None` when there is no such object (or
/// the JSON is malformed), in which case the document should pass unchanged.
pub fn inject_json(json: &[u8], cost: &Cost) -> Option<Vec<u8>> {
    let (start, end) = top_level_value(json, b"usage")?;
    let usage = &json[start..end];
    if usage.first() != Some(&b'{') {
        return None;
    }
    // Parsing only the usage object validates it and tells whether a field already exists.
    let mut map: Map<String, Value> = serde_json::from_slice(usage).ok()?;
    let mut out = Vec::with_capacity(json.len() + 96);
    out.extend_from_slice(&json[..start]);
    if FIELDS.iter().any(|f| map.contains_key(*f)) {
        for (field, value) in FIELDS.iter().zip(values(cost)) {
            map.insert((*field).to_string(), Value::from(value));
        }
        out.extend_from_slice(&serde_json::to_vec(&map).ok()?);
    } else {
        // Append before the closing brace: the engine's key order is kept.
        let close = end - 1;
        out.extend_from_slice(&json[start..close]);
        for (i, (field, value)) in FIELDS.iter().zip(values(cost)).enumerate() {
            if i > 0 || !map.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(format!("\"{field}\":{value}").as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(&json[end..]);
    Some(out)
}

/// Holds back the tail of an SSE stream from its final usage event until the answer's cost
/// is known.
#[derive(Debug, Default)]
pub struct SseCostRelay {
    /// An incomplete event at the end of the last chunk (waits for the rest of it). Grown in
    /// place and scanned only where new bytes arrived, so an event split over many chunks
    /// costs linear work, not a copy and rescan per chunk.
    tail: BytesMut,
    /// Everything from the first usage event on, once found.
    held: Vec<Bytes>,
    holding: bool,
}

impl SseCostRelay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk; returns what may go to the app now (possibly empty).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if self.holding {
            self.held.push(chunk);
            return Bytes::new();
        }
        let (data, from) = if self.tail.is_empty() {
            (chunk, 0)
        } else {
            // The tail holds no terminator, so one can only start in its last two bytes
            // (`\n\r\n`) or later.
            let from = self.tail.len().saturating_sub(2);
            self.tail.extend_from_slice(&chunk);
            (std::mem::take(&mut self.tail).freeze(), from)
        };
        let mut cut = match complete_events_end(&data[from..]) {
            0 => 0,
            found => from + found,
        };
        if data.len() - cut > MAX_PENDING_EVENT {
            // Not SSE after all, or an absurd event: pass it on rather than grow.
            cut = data.len();
        }
        if cut == 0 {
            // Still one incomplete event: keep it (without a copy when we own it alone).
            self.tail = data
                .try_into_mut()
                .unwrap_or_else(|b| BytesMut::from(&b[..]));
            return Bytes::new();
        }
        self.tail = BytesMut::from(&data[cut..]);
        let complete = data.slice(..cut);
        if !contains(&complete, USAGE_KEY) && !contains(&complete, DONE_MARK) {
            return complete;
        }
        let Some(start) = first_usage_event(&complete) else {
            return complete;
        };
        self.holding = true;
        self.held.push(complete.slice(start..));
        if !self.tail.is_empty() {
            self.held.push(std::mem::take(&mut self.tail).freeze());
        }
        complete.slice(..start)
    }

    /// The answer ended with `cost`: everything held, with the cost fields injected into
    /// each event that carries a non-null usage.
    pub fn finish(self, cost: Option<&Cost>) -> Bytes {
        self.finish_with(cost, None)
    }

    /// [`finish`](Self::finish), and when the stream carried no usage event (an engine that
    /// sends none; the worker counted the tokens), `usage_event` goes before the `[DONE]`.
    pub fn finish_with(self, cost: Option<&Cost>, usage_event: Option<Bytes>) -> Bytes {
        let rest = self.into_rest();
        if !contains(&rest, USAGE_KEY) {
            return match usage_event {
                Some(event) => concat(&event, &rest),
                None => rest,
            };
        }
        let Some(cost) = cost else {
            return rest;
        };
        // The cost goes into usage from the final usage event on, or else into an
        // unterminated last event (a stream cut right after its usage).
        let from = first_final_usage_event(&rest).unwrap_or_else(|| complete_events_end(&rest));
        concat(&rest[..from], &inject_events(&rest[from..], cost))
    }

    /// The answer failed: everything held, unchanged.
    pub fn abort(self) -> Bytes {
        self.into_rest()
    }

    fn into_rest(self) -> Bytes {
        let mut parts = self.held;
        parts.push(self.tail.freeze());
        if parts.iter().filter(|p| !p.is_empty()).count() <= 1 {
            return parts
                .into_iter()
                .find(|p| !p.is_empty())
                .unwrap_or_default();
        }
        let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
        for p in parts {
            out.extend_from_slice(&p);
        }
        out.freeze()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Byte offset just past the last blank line (SSE event terminator) in `data`.
fn complete_events_end(data: &[u8]) -> usize {
    let mut end = 0;
    for (i, &b) in data.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        match (data.get(i + 1), data.get(i + 2)) {
            (Some(b'\n'), _) => end = i + 2,
            (Some(b'\r'), Some(b'\n')) => end = i + 3,
            _ => {}
        }
    }
    end
}

/// Splits `data` into events: (start, end) ranges, each including its terminator; the last
/// one may be unterminated.
fn events(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\n' {
            let end = match (data.get(i + 1), data.get(i + 2)) {
                (Some(b'\n'), _) => Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => Some(i + 3),
                _ => None,
            };
            if let Some(end) = end {
                out.push((start, end));
                start = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    if start < data.len() {
        out.push((start, data.len()));
    }
    out
}

/// The single `data:` line's payload of an event: (start, end) in `event`. Events with
/// several data lines (a JSON split over lines) are left alone.
fn data_payload(event: &[u8]) -> Option<(usize, usize)> {
    let mut found = None;
    let mut line_start = 0;
    for line in event.split(|&b| b == b'\n') {
        let len = line.len();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            if found.is_some() {
                return None;
            }
            let skip = usize::from(rest.first() == Some(&b' '));
            found = Some((line_start + 5 + skip, line_start + line.len()));
        }
        line_start += len + 1;
    }
    found
}

/// The final usage event: a non-null `usage` object and no choices (OpenAI and vLLM send
/// `"choices":[]` there). Events that carry running usage next to choices (vLLM's
/// `continuous_usage_stats`) pass through, so a stream is never held back as a whole.
fn is_final_usage_event(event: &[u8]) -> bool {
    if !contains(event, USAGE_KEY) {
        return false;
    }
    let Some((ps, pe)) = data_payload(event) else {
        return false;
    };
    let data = &event[ps..pe];
    let usage_object =
        top_level_value(data, b"usage").is_some_and(|(s, _)| data.get(s) == Some(&b'{'));
    usage_object
        && match top_level_value(data, b"choices") {
            None => true,
            Some((s, e)) => {
                let v = &data[s..e];
                v == b"null"
                    || (v.first() == Some(&b'[') && data.get(skip_ws(data, s + 1)) == Some(&b']'))
            }
        }
}

fn concat(a: &[u8], b: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.freeze()
}

fn first_final_usage_event(data: &[u8]) -> Option<usize> {
    events(data)
        .into_iter()
        .find(|&(s, e)| is_final_usage_event(&data[s..e]))
        .map(|(s, _)| s)
}

/// The `data: [DONE]` event that closes an OpenAI stream.
fn is_done_event(event: &[u8]) -> bool {
    data_payload(event).is_some_and(|(ps, pe)| event[ps..pe].trim_ascii() == b"[DONE]")
}

/// Where holding starts: the final usage event, or `[DONE]` when no usage event came first
/// (a usage event may still have to be put before it).
fn first_usage_event(data: &[u8]) -> Option<usize> {
    events(data)
        .into_iter()
        .find(|&(s, e)| is_final_usage_event(&data[s..e]) || is_done_event(&data[s..e]))
        .map(|(s, _)| s)
}

/// An OpenAI final usage event (`"choices": []`) for a stream whose engine sent none.
pub fn usage_event(
    chat: bool,
    model: &str,
    usage: &cocoon_proto::Usage,
    cost: Option<&Cost>,
) -> Bytes {
    let mut u = serde_json::json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    });
    if let Some(cost) = cost {
        for (field, value) in FIELDS.iter().zip(values(cost)) {
            u[*field] = Value::from(value);
        }
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let event = serde_json::json!({
        "id": format!("usage-{created}"),
        "object": if chat { "chat.completion.chunk" } else { "text_completion" },
        "created": created,
        "model": model,
        "choices": [],
        "usage": u,
    });
    Bytes::from(format!("data: {event}\n\n"))
}

fn inject_events(data: &[u8], cost: &Cost) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 96);
    for (s, e) in events(data) {
        let event = &data[s..e];
        let injected = if contains(event, USAGE_KEY) {
            data_payload(event)
                .and_then(|(ps, pe)| inject_json(&event[ps..pe], cost).map(|json| (ps, pe, json)))
        } else {
            None
        };
        match injected {
            Some((ps, pe, json)) => {
                out.extend_from_slice(&event[..ps]);
                out.extend_from_slice(&json);
                out.extend_from_slice(&event[pe..]);
            }
            None => out.extend_from_slice(event),
        }
    }
    Bytes::from(out)
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Index just past the string that opens at `i` (a `"`).
fn skip_string(json: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while let Some(&b) = json.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Index just past the JSON value starting at `i`. Iterative, so deep nesting cannot
/// overflow the stack.
fn skip_value(json: &[u8], i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => skip_string(json, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&b) = json.get(j) {
                match b {
                    b'"' => {
                        j = skip_string(json, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while json
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The (start, end) byte range of the value of `key` in the top-level JSON object.
fn top_level_value(json: &[u8], key: &[u8]) -> Option<(usize, usize)> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(json, i);
        if json.get(i)? != &b'"' {
            return None;
        }
        let key_end = skip_string(json, i)?;
        let this_key = &json[i + 1..key_end - 1];
        i = skip_ws(json, key_end);
        if json.get(i)? != &b':' {
            return None;
        }
        let start = skip_ws(json, i + 1);
        let end = skip_value(json, start)?;
        if this_key == key {
            return Some((start, end));
        }
        i = skip_ws(json, end);
        match json.get(i)? {
            b',' => i += 1,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
