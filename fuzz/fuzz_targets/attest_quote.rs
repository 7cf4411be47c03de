//! Attestation evidence: the quote parsers every peer's quote goes through
//! (`td_quote::TdQuote::parse`, `quote::QuoteV4::parse`, `quote_kind`, `image_hash_of`, the
//! PCK leaf's SGX extension), the verifiers behind them (`sim::verify_quote`,
//! `tdx::verify_quote` with dcap-qvl against real Intel collateral from
//! `crates/attest/testdata/tdx`, and the policy path `cocoon_attest::verify_quote`), collateral
//! JSON and its validity window, and policy files. Properties (as in
//! `crates/attest/tests/fuzz_quote.rs`):
//!
//! - nothing panics; parsing holds at most 8 bytes per input byte (plus 16 KiB);
//! - the two parsers agree, and a v4 quote re-encodes to exactly its bytes;
//! - no edited quote verifies: a tdx quote that passes DCAP is one of the genuine ones (up
//!   to trailing zero padding, which no signature covers);
//! - every refusal carries a message.
//!
//! Input: raw bytes, tried as a quote, as collateral JSON, as a policy file and as a sim root
//! certificate.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use cocoon_attest::pccs::PlatformKey;
use cocoon_attest::quote::QuoteV4;
use cocoon_attest::report::image_hash_of;
use cocoon_attest::td_quote::TdQuote;
use cocoon_attest::tdx::{collateral_window, parse_collateral, verify_quote, Collateral};
use cocoon_attest::{quote_kind, sim, EvidenceKind, Policy, MAX_QUOTE_LEN};
use cocoon_fuzz::{json_budget, linear, within};
use libfuzzer_sys::fuzz_target;

const V4: &[u8] = include_bytes!("../../crates/attest/testdata/tdx/tdx_quote");
const V4_COLL: &[u8] = include_bytes!("../../crates/attest/testdata/tdx/tdx_quote_collateral.json");
const V4_AT: u64 = 1_750_332_747;
const V5_TD15: &[u8] = include_bytes!("../../crates/attest/testdata/tdx/tdx_quote_outdated");
const V5_TD15EX: &[u8] = include_bytes!("../../crates/attest/testdata/tdx/tdx_quote_td15ex");
/// Within the validity of the sim CA that `sim::build_quote` uses.
const SIM_AT: u64 = 1_800_000_000;

fn v4_collateral() -> &'static Collateral {
    static C: OnceLock<Collateral> = OnceLock::new();
    C.get_or_init(|| parse_collateral(V4_COLL).unwrap())
}

fn sim_roots() -> &'static BTreeSet<[u8; 32]> {
    static R: OnceLock<BTreeSet<[u8; 32]>> = OnceLock::new();
    R.get_or_init(|| [sim::sim_root_id()].into())
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    &b[..b.len() - b.iter().rev().take_while(|&&x| x == 0).count()]
}

fn msg(e: impl std::fmt::Display) {
    assert!(!e.to_string().is_empty());
}

/// Every parser on `raw`: memory, agreement, re-encoding.
fn parse_all(raw: &[u8]) -> Option<TdQuote> {
    let (td, v4) = within("quote parse", linear(raw.len(), 8, 16 << 10), || {
        (TdQuote::parse(raw), QuoteV4::parse(raw))
    });
    if let Ok(v4) = &v4 {
        assert!(raw.len() <= MAX_QUOTE_LEN);
        assert_eq!(
            v4.encode().unwrap(),
            raw,
            "v4 quote does not re-encode to its bytes"
        );
    }
    match (&td, &v4) {
        (Ok(td), Ok(v4)) => {
            assert_eq!(td.body, v4.body);
            assert_eq!(td.header, v4.header);
        }
        // A v4 quote the sim parser accepts and TdQuote refuses is not a sim quote.
        (Err(_), Ok(v4)) => assert_ne!(v4.cert_data_type, sim::CERT_DATA_TYPE_SIM),
        _ => {}
    }
    if let Ok(td) = &td {
        // The collateral lookup reads the PCK leaf's SGX extension.
        if let Err(e) = PlatformKey::of(td) {
            msg(e);
        }
    }
    match quote_kind(raw) {
        Ok(_) => assert!(td.is_ok()),
        Err(e) => {
            assert!(td.is_err());
            msg(e);
        }
    }
    assert_eq!(image_hash_of(raw).is_ok(), td.is_ok());
    if let Err(e) = &v4 {
        msg(e);
    }
    td.map_err(msg).ok()
}

fn verify_all(raw: &[u8]) {
    match sim::verify_quote(raw, sim_roots(), SIM_AT) {
        Ok(q) => {
            assert!(matches!(quote_kind(raw), Ok(EvidenceKind::Sim)));
            assert_eq!(q.cert_data_type, sim::CERT_DATA_TYPE_SIM);
        }
        Err(e) => msg(e),
    }
    match verify_quote(raw, v4_collateral(), V4_AT) {
        Ok(_) => {
            let genuine = [V4, V5_TD15, V5_TD15EX]
                .iter()
                .any(|q| trim_zeros(q) == trim_zeros(raw));
            assert!(genuine, "an edited tdx quote verified");
        }
        Err(e) => msg(e),
    }
    let at = UNIX_EPOCH + Duration::from_secs(SIM_AT);
    if let Err(e) = cocoon_attest::verify_quote(raw, &Policy::allow_all(), at) {
        msg(e);
    }
}

fuzz_target!(init: { v4_collateral(); sim_roots(); }, |raw: &[u8]| {
    if parse_all(raw).is_some() {
        verify_all(raw);
    }
    match within("collateral", json_budget(raw.len()), || parse_collateral(raw)) {
        Ok(c) => {
            let _ = collateral_window(&c);
            if let Err(e) = verify_quote(V4, &c, V4_AT) {
                msg(e);
            }
        }
        Err(e) => msg(e),
    }
    if let Err(e) = Policy::from_json(raw) {
        msg(e);
    }
    if let Err(e) = sim::root_key_id(raw) {
        msg(e);
    }
});
