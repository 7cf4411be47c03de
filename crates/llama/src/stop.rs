//! Stop sequences over streamed text: text that might be the start of a stop sequence is held
//! back until it is known not to be one, so an app never sees any part of a stop sequence.

/// Feeds generated text piece by piece; tells what may be sent and whether a stop matched.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released (a possible stop-sequence prefix).
    held: String,
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Text safe to send now.
    pub emit: String,
    /// A stop sequence matched: generation ends, nothing after `emit` is sent.
    pub stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> Pushed {
        if self.stops.is_empty() {
            return Pushed {
                emit: text.to_string(),
                stopped: false,
            };
        }
        self.held.push_str(text);
        // The earliest match wins; search only where a new match can be (held text is
        // bounded by the longest stop sequence, so this stays linear overall).
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first {
            let emit = self.held[..at].to_string();
            self.held.clear();
            return Pushed {
                emit,
                stopped: true,
            };
        }
        // Keep the longest tail that is a prefix of some stop sequence.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let emit = self.held[..cut].to_string();
        self.held.drain(..cut);
        Pushed {
            emit,
            stopped: false,
        }
    }

    /// Generation ended without a stop: releases what was held back.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// Length in bytes of the longest suffix of `text` that is a proper prefix of `stop`,
/// on character boundaries.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.as_bytes().starts_with(&text.as_bytes()[start..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let r = m.push(p);
            out.push_str(&r.emit);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn stop_split_across_pieces_is_never_emitted() {
        assert_eq!(
            run(&["END"], &["abc E", "N", "Dxyz"]),
            ("abc ".into(), true)
        );
        assert_eq!(
            run(&["END"], &["abc E", "N", "x"]),
            ("abc ENx".into(), false)
        );
        assert_eq!(
            run(&["\n\n", "."], &["Paris", ". More"]),
            ("Paris".into(), true)
        );
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        assert_eq!(run(&["é!"], &["caf", "é", "!"]), ("caf".into(), true));
    }

    proptest! {
        /// The output is exactly the text before the first stop occurrence, however the text
        /// is cut into pieces.
        #[test]
        fn equals_truncation_at_first_stop(
            text in "[ab\\n ]{0,40}",
            stop in "[ab\\n]{1,4}",
            cuts in proptest::collection::vec(0usize..40, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= text.len()).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts { pieces.push(&text[last..c]); last = c; }
            pieces.push(&text[last..]);
            let (out, stopped) = run(&[stop.as_str()], &pieces);
            match text.find(&stop) {
                Some(at) => { prop_assert!(stopped); prop_assert_eq!(out, &text[..at]); }
                None => { prop_assert!(!stopped); prop_assert_eq!(out, text); }
            }
        }
    }
}
