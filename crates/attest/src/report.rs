//! Helpers for tools (the `cocoon attest` CLI): reading quote files, policy files, and printing
//! what a quote says.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::quote::TdReport10;
use crate::td_quote::TdQuote;
use crate::{AttestError, Policy, QuoteReport, MAX_QUOTE_LEN};

/// Read a quote file: raw bytes, or hex text (whitespace ignored, as `cocoon attest quote`
/// prints it).
pub fn read_quote_file(path: &Path) -> Result<Vec<u8>, AttestError> {
    let raw =
        std::fs::read(path).map_err(|e| AttestError::quote(format!("{}: {e}", path.display())))?;
    if raw.len() > 2 * MAX_QUOTE_LEN + 64 {
        return Err(AttestError::quote(format!(
            "{}: file too large",
            path.display()
        )));
    }
    let text: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit) {
        return hex::decode(&text)
            .map_err(|e| AttestError::quote(format!("{}: hex: {e}", path.display())));
    }
    Ok(raw)
}

/// A policy file (JSON). Every field is optional; absent = the production default
/// ([`Policy::default`]). Hashes and registers are hex.
///
/// ```json
/// { "allow_sim": true, "allowed_image_hashes": ["<64 hex>"], "allowed_mrtds": ["<96 hex>"],
///   "allowed_rtmrs": [["<96 hex>", "<96 hex>", "<96 hex>", "<96 hex>"]],
///   "pinned_root_ids": ["<64 hex>"], "accepted_tcb_statuses": ["SWHardeningNeeded"] }
/// ```
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PolicyFile {
    allow_none: bool,
    allow_sim: bool,
    allowed_image_hashes: Option<Vec<String>>,
    allowed_mrtds: Option<Vec<String>>,
    allowed_rtmrs: Option<Vec<[String; 4]>>,
    pinned_root_ids: Vec<String>,
    accepted_tcb_statuses: BTreeSet<String>,
}

fn fixed<const N: usize>(s: &str) -> Result<[u8; N], AttestError> {
    let bad = || AttestError::BadClaims(format!("policy: expected {N} hex bytes, got {s:?}"));
    hex::decode(s.trim())
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())
}

fn set<const N: usize>(v: &[String]) -> Result<BTreeSet<[u8; N]>, AttestError> {
    v.iter().map(|s| fixed::<N>(s)).collect()
}

impl Policy {
    /// Parse a JSON policy file (format in [`PolicyFile`]); collateral is set separately.
    pub fn from_json(json: &[u8]) -> Result<Policy, AttestError> {
        let f: PolicyFile = serde_json::from_slice(json)
            .map_err(|e| AttestError::BadClaims(format!("policy: {e}")))?;
        let rtmrs = f
            .allowed_rtmrs
            .map(|sets| {
                sets.iter()
                    .map(|s| {
                        Ok([
                            fixed::<48>(&s[0])?,
                            fixed::<48>(&s[1])?,
                            fixed::<48>(&s[2])?,
                            fixed::<48>(&s[3])?,
                        ])
                    })
                    .collect::<Result<BTreeSet<_>, AttestError>>()
            })
            .transpose()?;
        Ok(Policy {
            allow_none: f.allow_none,
            allow_sim: f.allow_sim,
            allowed_image_hashes: f
                .allowed_image_hashes
                .as_deref()
                .map(set::<32>)
                .transpose()?,
            allowed_mrtds: f.allowed_mrtds.as_deref().map(set::<48>).transpose()?,
            allowed_rtmrs: rtmrs,
            pinned_root_ids: set::<32>(&f.pinned_root_ids)?,
            accepted_tcb_statuses: f.accepted_tcb_statuses,
            tdx: None,
        })
    }
}

fn registers(out: &mut String, body: &TdReport10) {
    let m = body.measurements();
    let _ = writeln!(out, "mrtd:          {}", hex::encode(m.mrtd));
    for (i, r) in m.rtmr.iter().enumerate() {
        let _ = writeln!(out, "rtmr{i}:         {}", hex::encode(r));
    }
    let _ = writeln!(out, "mrconfigid:    {}", hex::encode(m.mrconfigid));
    let _ = writeln!(out, "mrowner:       {}", hex::encode(m.mrowner));
    let _ = writeln!(out, "mrownerconfig: {}", hex::encode(m.mrownerconfig));
    let _ = writeln!(out, "image_hash:    {}", hex::encode(m.image_hash()));
    let _ = writeln!(out, "report_data:   {}", hex::encode(body.report_data));
}

/// Human-readable report of a verified quote (one `key: value` per line).
pub fn report_text(report: &QuoteReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "kind:          {}", report.kind);
    let _ = writeln!(
        out,
        "tcb_status:    {}",
        report.tcb_status.as_deref().unwrap_or("n/a (sim)")
    );
    if !report.advisory_ids.is_empty() {
        let _ = writeln!(out, "advisories:    {}", report.advisory_ids.join(","));
    }
    registers(&mut out, &report.body);
    out
}

/// Image hash of a quote without verifying it (parse only).
pub fn image_hash_of(raw: &[u8]) -> Result<[u8; 32], AttestError> {
    Ok(TdQuote::parse(raw)?.body.measurements().image_hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_file_parses_and_rejects_bad_hex() {
        let p = Policy::from_json(br#"{"allow_sim":true,"allowed_image_hashes":[]}"#).unwrap();
        assert!(p.allow_sim && !p.allow_none);
        assert_eq!(p.allowed_image_hashes, Some(BTreeSet::new()));
        assert!(p.allowed_mrtds.is_none());
        let hex48 = "ab".repeat(48);
        let json = format!(
            r#"{{"allowed_mrtds":["{hex48}"],"allowed_rtmrs":[["{hex48}","{hex48}","{hex48}","{hex48}"]]}}"#
        );
        let p = Policy::from_json(json.as_bytes()).unwrap();
        assert_eq!(p.allowed_mrtds, Some([[0xab; 48]].into()));
        assert_eq!(p.allowed_rtmrs, Some([[[0xab; 48]; 4]].into()));
        assert!(Policy::from_json(br#"{"allowed_mrtds":["00"]}"#).is_err());
        assert!(Policy::from_json(br#"{"unknown":1}"#).is_err());
        let d = Policy::from_json(b"{}").unwrap();
        assert!(!d.allow_sim && !d.allow_none && d.pinned_root_ids.is_empty());
    }
}
