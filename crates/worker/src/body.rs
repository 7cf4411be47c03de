//! Validation and rewriting of a request body before it reaches the engine.
//!
//! The worker is where `max_tokens` is enforced (the reservation depends on it) and where
//! streaming requests are made to report usage, because billing counts the engine's usage.

use serde_json::{Map, Value};

use cocoon_proto::INFERENCE_PATHS;
/// Parses, checks and rewrites `body`; returns the bytes to send to the engine.
pub fn rewrite(
    path: &str,
    body: &[u8],
    base_model: &str,
    max_tokens: u32,
    stream: bool,
) -> Result<Vec<u8>, String> {
    if !INFERENCE_PATHS.contains(&path) {
        return Err(format!("unsupported path {path:?}"));
    }
    // Bounded before parsing: a body of tiny values costs ~100× its size as `Value`s.
    cocoon_proto::check_json_values(body)?;
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("body must be a JSON object".into());
    };
    match obj.get("model") {
        Some(Value::String(m)) if m == base_model => {}
        Some(Value::String(m)) => {
            return Err(format!(
                "model {m:?} is not served here (this worker serves {base_model:?})"
            ))
        }
        _ => return Err("`model` must be a string".into()),
    }
    match path {
        "/v1/chat/completions" if !matches!(obj.get("messages"), Some(Value::Array(_))) => {
            return Err("`messages` must be an array".into())
        }
        "/v1/completions"
            if !matches!(obj.get("prompt"), Some(Value::String(_) | Value::Array(_))) =>
        {
            return Err("`prompt` must be a string or an array".into())
        }
        _ => {}
    }
    enforce_max_tokens(&mut obj, path, max_tokens)?;
    obj.insert("stream".into(), Value::Bool(stream));
    if stream {
        let options = obj
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        match options {
            Value::Object(o) => {
                o.insert("include_usage".into(), Value::Bool(true));
            }
            _ => return Err("`stream_options` must be an object".into()),
        }
    } else {
        obj.remove("stream_options");
    }
    serde_json::to_vec(&Value::Object(obj)).map_err(|e| format!("cannot encode body: {e}"))
}

/// Caps the completion length at `cap`, whichever field the app used.
fn enforce_max_tokens(obj: &mut Map<String, Value>, path: &str, cap: u32) -> Result<(), String> {
    let field = if path == "/v1/chat/completions" && obj.contains_key("max_completion_tokens") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let asked = match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| format!("`{field}` must be a non-negative integer"))?,
        ),
    };
    let effective = asked.map_or(u64::from(cap), |a| a.min(u64::from(cap)));
    obj.insert(field.into(), Value::from(effective));
    if field == "max_completion_tokens" {
        // Two caps would be ambiguous for engines; keep the one we enforce.
        obj.remove("max_tokens");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, cap: u32, stream: bool) -> Result<Value, String> {
        rewrite("/v1/chat/completions", body.as_bytes(), "m", cap, stream)
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn caps_max_tokens_and_forces_usage() {
        let v = run(
            r#"{"model":"m","messages":[],"max_tokens":5000}"#,
            100,
            true,
        )
        .unwrap();
        assert_eq!(v["max_tokens"], 100);
        assert_eq!(v["stream_options"]["include_usage"], true);
        let v = run(
            r#"{"model":"m","messages":[],"max_completion_tokens":7}"#,
            100,
            false,
        )
        .unwrap();
        assert_eq!(v["max_completion_tokens"], 7);
        assert!(v.get("max_tokens").is_none());
        let v = run(r#"{"model":"m","messages":[]}"#, 64, false).unwrap();
        assert_eq!(v["max_tokens"], 64);
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(run("[]", 1, false).is_err());
        assert!(run(r#"{"model":"other","messages":[]}"#, 1, false).is_err());
        assert!(run(r#"{"model":"m"}"#, 1, false).is_err());
        assert!(run(r#"{"model":"m","messages":[],"max_tokens":-1}"#, 1, false).is_err());
        assert!(run(r#"{"model":"m","messages":[],"stream_options":3}"#, 1, true).is_err());
        assert!(rewrite("/v1/embeddings", b"{}", "m", 1, false).is_err());
    }
}
