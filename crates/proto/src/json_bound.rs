//! A bound on how many JSON values a request body may hold, checked before it is parsed.
//!
//! Bodies are parsed into `serde_json::Value`s, which cost up to ~180 bytes per value; a body
//! made of tiny values (`[[0],[0],…]`) costs about 100 bytes per input byte, so a 16 MiB body
//! could take 2 GiB. Counting values first is one pass over the bytes without allocating, and
//! the bound keeps any one body's parse under ~50 MB (measured: 47.7 MB for the densest body
//! under it) while leaving every real request through: the densest real bodies are token-id
//! prompts, one value per token, and 262,144 tokens is past every model's context.

/// Most JSON values a body may hold.
pub const MAX_JSON_VALUES: usize = 1 << 18;

/// An upper bound on the number of values in the JSON text `raw`: one, plus one per `[`, `{`
/// and `,` outside strings (each starts at most one more value). Invalid JSON gets a number
/// too; the parser refuses it afterwards.
pub fn json_value_bound(raw: &[u8]) -> usize {
    let mut count = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' | b',' => count += 1,
                _ => {}
            }
        }
    }
    count
}

/// Refuses a body with more than [`MAX_JSON_VALUES`] values, with a message for the app.
pub fn check_json_values(raw: &[u8]) -> Result<(), String> {
    let n = json_value_bound(raw);
    if n > MAX_JSON_VALUES {
        return Err(format!(
            "request body holds about {n} JSON values; at most {MAX_JSON_VALUES} are accepted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values_outside_strings_only() {
        assert_eq!(json_value_bound(b"0"), 1);
        assert_eq!(json_value_bound(b"[1,2,3]"), 4);
        assert_eq!(json_value_bound(br#"{"a":[1,{"b":2}]}"#), 5);
        assert_eq!(json_value_bound(br#"{"a":"[,{,\"[,"}"#), 2);
        assert_eq!(json_value_bound(br#""\\""#), 1);
        let dense = format!("[{}0]", "[0],".repeat(MAX_JSON_VALUES));
        assert!(check_json_values(dense.as_bytes()).is_err());
        let text = format!(r#"{{"model":"m","prompt":"{}"}}"#, "a,[{".repeat(1 << 20));
        assert!(check_json_values(text.as_bytes()).is_ok());
    }

    #[test]
    fn the_bound_is_never_below_the_true_count() {
        fn count(v: &serde_json::Value) -> usize {
            1 + match v {
                serde_json::Value::Array(a) => a.iter().map(count).sum(),
                serde_json::Value::Object(o) => o.values().map(count).sum(),
                _ => 0,
            }
        }
        for text in [
            r#"{"model":"x","messages":[{"role":"user","content":"hi, [there]"}],"n":2}"#,
            r#"[[],{},[[]],{"a":{}},"\"",1.5e3,null,true]"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(json_value_bound(text.as_bytes()) >= count(&v), "{text}");
        }
    }
}
