//! Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE` and sample lines, every
//! family's samples together. Label names come from [`LABEL_NAMES`] and label values are
//! `&'static str` (enum names, build constants, or interned model names), so request
//! content cannot reach a label; values are still checked and escaped.

use std::fmt::Write;

/// `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every label name any node uses (the closed set).
pub const LABEL_NAMES: &[&str] = &[
    "role", "model", "outcome", "class", "code", "window", "peer", "kind", "version", "le",
];

/// Family type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A label set: (name, value) pairs.
pub type Labels<'a> = &'a [(&'static str, &'static str)];

fn valid_name(name: &str, colon: bool) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':'))
}

/// Label values are short printable ASCII; anything else (a bug) is reported as "invalid".
fn valid_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= 256 && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Writes `value` escaped for a label value (`\\`, `\"`, `\n`).
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as Prometheus writes it (`NaN`, `+Inf`, `-Inf`, else shortest round-trip).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Builds one exposition. Call [`Encoder::family`], then its samples, then the next family.
#[derive(Debug, Default)]
pub struct Encoder {
    out: String,
    family: Option<(&'static str, Kind)>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) -> &mut Self {
        debug_assert!(valid_name(name, true), "bad metric name {name:?}");
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        self.family = Some((name, kind));
        self
    }

    fn line(&mut self, suffix: &str, labels: Labels<'_>, extra: Option<(&str, &str)>, value: &str) {
        let Some((name, _)) = self.family else {
            debug_assert!(false, "sample before any family");
            return;
        };
        self.out.push_str(name);
        self.out.push_str(suffix);
        let all = labels.iter().map(|&(k, v)| (k, v)).chain(extra);
        let mut first = true;
        for (key, value) in all {
            debug_assert!(
                LABEL_NAMES.contains(&key) && valid_name(key, false),
                "label {key:?} outside the closed set"
            );
            debug_assert!(valid_value(value), "bad label value {value:?}");
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(
                &mut self.out,
                if valid_value(value) { value } else { "invalid" },
            );
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    /// A counter or gauge sample from an integer (exact, whatever its size).
    pub fn int(&mut self, labels: Labels<'_>, value: u64) -> &mut Self {
        debug_assert!(matches!(
            self.family,
            Some((_, Kind::Counter | Kind::Gauge))
        ));
        self.line("", labels, None, &value.to_string());
        self
    }

    /// A counter or gauge sample.
    pub fn float(&mut self, labels: Labels<'_>, value: f64) -> &mut Self {
        debug_assert!(matches!(
            self.family,
            Some((_, Kind::Counter | Kind::Gauge))
        ));
        self.line("", labels, None, &format_value(value));
        self
    }

    /// One histogram: cumulative `_bucket` lines (with `+Inf`), `_sum` and `_count`.
    /// `counts` are per bucket (not cumulative), one more than `bounds` (the overflow).
    pub fn histogram(
        &mut self,
        labels: Labels<'_>,
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> &mut Self {
        debug_assert!(matches!(self.family, Some((_, Kind::Histogram))));
        debug_assert_eq!(counts.len(), bounds.len() + 1);
        let mut cumulative = 0u64;
        for (i, count) in counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(*count);
            let le = bounds
                .get(i)
                .map_or("+Inf".to_string(), |b| format_value(*b));
            self.line(
                "_bucket",
                labels,
                Some(("le", &le)),
                &cumulative.to_string(),
            );
        }
        self.line("_sum", labels, None, &format_value(sum));
        self.line("_count", labels, None, &cumulative.to_string());
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The `/metrics` response: the exposition with its content type.
pub fn response(body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}
