//! Reading an app's request: routing fields the client needs, client-only fields stripped.

use serde_json::{Map, Value};
use std::time::Duration;

/// Defaults for fields the app may omit.
#[derive(Clone, Debug)]
pub struct RequestDefaults {
    pub max_tokens: u32,
    pub max_coefficient: u32,
    pub timeout: Duration,
}

impl Default for RequestDefaults {
    fn default() -> Self {
        RequestDefaults {
            max_tokens: 1000,
            max_coefficient: 4000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// An app request ready to forward.
#[derive(Debug)]
pub struct ParsedRequest {
    pub model: String,
    pub stream: bool,
    pub max_tokens: u32,
    pub max_coefficient: u32,
    pub timeout: Duration,
    /// The body with client-only fields removed.
    pub body: Vec<u8>,
}

const LONGEST_TIMEOUT_SECS: f64 = 3600.0;

fn uint(obj: &Map<String, Value>, field: &str) -> Result<Option<u32>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("`{field}` must be a non-negative integer below 2^32")),
    }
}

pub fn parse(raw: &[u8], defaults: &RequestDefaults) -> Result<ParsedRequest, String> {
    // Bounded before parsing: a body of tiny values costs ~100× its size as `Value`s.
    cocoon_proto::check_json_values(raw)?;
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("request body must be a JSON object".into());
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => return Err("`model` is required".into()),
        Some(_) => return Err("`model` must be a string".into()),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`stream` must be a boolean".into()),
    };
    let max_tokens = match uint(&obj, "max_completion_tokens")? {
        Some(n) => n,
        None => uint(&obj, "max_tokens")?.unwrap_or(defaults.max_tokens),
    };
    let max_coefficient = uint(&obj, "max_coefficient")?.unwrap_or(defaults.max_coefficient);
    let timeout = match obj.get("timeout") {
        None | Some(Value::Null) => defaults.timeout,
        Some(v) => match v.as_f64() {
            Some(s) if s > 0.0 && s <= LONGEST_TIMEOUT_SECS => Duration::from_secs_f64(s),
            _ => {
                return Err(format!(
                    "`timeout` must be a number of seconds in (0, {LONGEST_TIMEOUT_SECS}]"
                ))
            }
        },
    };
    obj.remove("max_coefficient");
    obj.remove("timeout");
    let body = serde_json::to_vec(&Value::Object(obj))
        .map_err(|e| format!("cannot encode request: {e}"))?;
    Ok(ParsedRequest {
        model,
        stream,
        max_tokens,
        max_coefficient,
        timeout,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<ParsedRequest, String> {
        parse(s.as_bytes(), &RequestDefaults::default())
    }

    #[test]
    fn strips_client_fields_and_reads_routing() {
        let r = p(r#"{"model":"m","messages":[],"max_coefficient":1500,"timeout":2.5,"max_tokens":9,"stream":true}"#).unwrap();
        assert_eq!(
            (r.model.as_str(), r.stream, r.max_tokens, r.max_coefficient),
            ("m", true, 9, 1500)
        );
        assert_eq!(r.timeout, Duration::from_millis(2500));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body.get("max_coefficient").is_none() && body.get("timeout").is_none());
        assert_eq!(body["max_tokens"], 9);
    }

    #[test]
    fn clear_errors_for_bad_input() {
        assert!(p("{").unwrap_err().contains("not valid JSON"));
        assert!(p("[1]").unwrap_err().contains("JSON object"));
        assert!(p(r#"{"messages":[]}"#)
            .unwrap_err()
            .contains("`model` is required"));
        assert!(p(r#"{"model":5}"#)
            .unwrap_err()
            .contains("must be a string"));
        assert!(p(r#"{"model":"m","stream":"yes"}"#)
            .unwrap_err()
            .contains("`stream`"));
        assert!(p(r#"{"model":"m","max_tokens":-3}"#)
            .unwrap_err()
            .contains("`max_tokens`"));
        assert!(p(r#"{"model":"m","timeout":0}"#)
            .unwrap_err()
            .contains("`timeout`"));
    }
}
