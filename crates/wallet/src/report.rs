//! What a command produced: text for people, JSON for scripts. Commands build both; `run`
//! returns the one asked for.

use serde_json::Value;
use std::fmt::Write as _;

#[derive(Clone, Debug, Default)]
pub struct Report {
    text: String,
    pub json: Value,
}

impl Report {
    pub fn new(json: Value) -> Report {
        Report {
            text: String::new(),
            json,
        }
    }

    /// Appends one line of text.
    pub fn line(&mut self, line: impl AsRef<str>) -> &mut Self {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
        self
    }

    /// Appends `  key: value` (an indented detail line).
    pub fn kv(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        let _ = writeln!(self.text, "  {key}: {value}");
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The output: pretty JSON (with a final newline) or the text.
    pub fn render(&self, json: bool) -> String {
        if json {
            let mut s = serde_json::to_string_pretty(&self.json)
                .unwrap_or_else(|e| format!("{{\"error\": \"cannot render JSON: {e}\"}}"));
            s.push('\n');
            s
        } else {
            self.text.clone()
        }
    }
}
