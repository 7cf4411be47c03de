//! The Cocoon wire protocol: generated messages and services from `proto/cocoon.proto`,
//! plus the protocol version range and the hard size limits every peer enforces.

#![allow(clippy::all, clippy::pedantic)]

/// Generated code for package `cocoon.v1`.
pub mod v1 {
    tonic::include_proto!("cocoon.v1");
}

pub use v1::*;

pub mod money;

/// Oldest protocol version this build speaks.
pub const PROTOCOL_MIN: u32 = 1;
/// Newest protocol version this build speaks.
pub const PROTOCOL_MAX: u32 = 1;

mod json_bound;
pub use json_bound::{check_json_values, json_value_bound, MAX_JSON_VALUES};

/// Largest JSON request body an app may send (and the largest body on any link).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest single gRPC message on any link: a body plus its envelope.
pub const MAX_MESSAGE_BYTES: usize = MAX_BODY_BYTES + 64 * 1024;
/// Largest relayed answer chunk; bigger engine chunks are split before sending.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// Longest free-text field (reasons, names, addresses) accepted from a peer.
pub const MAX_TEXT_BYTES: usize = 4096;

/// The OpenAI endpoints a request may travel to.
pub const INFERENCE_PATHS: [&str; 2] = ["/v1/chat/completions", "/v1/completions"];

/// This build's supported range, as sent in handshakes.
pub fn local_protocol_range() -> ProtocolRange {
    ProtocolRange {
        min: PROTOCOL_MIN,
        max: PROTOCOL_MAX,
    }
}

/// Picks the highest version both sides support, or explains why there is none.
pub fn negotiate(remote: Option<&ProtocolRange>) -> Result<u32, String> {
    let remote = remote.ok_or_else(|| "peer sent no protocol range".to_string())?;
    if remote.min > remote.max {
        return Err(format!(
            "peer protocol range is empty ({}..={})",
            remote.min, remote.max
        ));
    }
    let low = remote.min.max(PROTOCOL_MIN);
    let high = remote.max.min(PROTOCOL_MAX);
    if low > high {
        return Err(format!(
            "no common protocol version: peer speaks {}..={}, we speak {}..={}",
            remote.min, remote.max, PROTOCOL_MIN, PROTOCOL_MAX
        ));
    }
    Ok(high)
}

/// Truncates untrusted text to the protocol limit on a char boundary.
pub fn bounded_text(s: &str) -> &str {
    if s.len() <= MAX_TEXT_BYTES {
        return s;
    }
    let mut end = MAX_TEXT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_highest_common() {
        assert_eq!(negotiate(Some(&ProtocolRange { min: 1, max: 9 })), Ok(1));
        assert!(negotiate(Some(&ProtocolRange { min: 2, max: 3 })).is_err());
        assert!(negotiate(Some(&ProtocolRange { min: 1, max: 0 })).is_err());
        assert!(negotiate(None).is_err());
    }

    #[test]
    fn bounded_text_respects_char_boundaries() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cut = bounded_text(&long);
        assert!(cut.len() <= MAX_TEXT_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
