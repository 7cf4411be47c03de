//! Fuzzing quote parsing and verification: `td_quote::TdQuote::parse` and `quote::QuoteV4::parse`
//! (every peer's evidence goes through them), `sim::verify_quote`, `tdx::verify_quote` with
//! dcap-qvl behind it (real Intel quotes and collateral from testdata/tdx), collateral JSON and
//! its validity window, collateral fetched from a PCCS that answers garbage, and policy files.
//! Properties:
//!
//! - nothing panics on arbitrary bytes or on structure-aware mutations of genuine quotes and
//!   collateral, and parsing holds at most a linear amount of memory;
//! - the two parsers agree, and a v4 quote re-encodes to exactly its bytes;
//! - a genuine sim or tdx quote verifies, and any change to its bytes is refused (tdx quotes
//!   tolerate only trailing zero padding, which no signature covers);
//! - a PCCS answer either yields usable collateral or a clean error.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-attest --test fuzz_quote` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

#[path = "../../../tests/fuzz/json.rs"]
mod json;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cocoon_attest::pccs::{fetch_collateral, pccs_responses, FetchOptions, PlatformKey};
use cocoon_attest::quote::QuoteV4;
use cocoon_attest::report::image_hash_of;
use cocoon_attest::td_quote::TdQuote;
use cocoon_attest::tdx::{collateral_window, parse_collateral, verify_quote, Collateral};
use cocoon_attest::{quote_kind, sim, Measurements, Policy, MAX_QUOTE_LEN};
use proptest::prelude::*;
use proptest::sample::Index;
use support::{assert_linear, config, mutate, mutated_from, mutations, peak_alloc};

const V4: &[u8] = include_bytes!("../testdata/tdx/tdx_quote");
const V4_COLL: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_collateral.json");
const V4_AT: u64 = 1_750_332_747;
const V5_TD15: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_outdated");
const V5_TD15EX: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_td15ex");
const V5_TD15EX_COLL: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_td15ex_collateral.json");
const V5_TD15EX_AT: u64 = 1_791_421_786;
const SIM_AT: u64 = 1_800_000_000;

fn sim_quote() -> &'static [u8] {
    static Q: OnceLock<Vec<u8>> = OnceLock::new();
    Q.get_or_init(|| sim::build_quote(&Measurements::for_label("fuzz"), &[0x5a; 64]).unwrap())
}

fn v4_collateral() -> &'static Collateral {
    static C: OnceLock<Collateral> = OnceLock::new();
    C.get_or_init(|| parse_collateral(V4_COLL).unwrap())
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        sim_quote().to_vec(),
        V4.to_vec(),
        V5_TD15.to_vec(),
        V5_TD15EX.to_vec(),
    ]
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    &b[..b.len() - b.iter().rev().take_while(|&&x| x == 0).count()]
}

/// Runs every parser on `raw`; checks memory, agreement and re-encoding.
fn parse_all(raw: &[u8]) {
    let ((td, v4), peak) = peak_alloc(|| (TdQuote::parse(raw), QuoteV4::parse(raw)));
    // Body, signature data and the PCK chain's PEM text decoded: a few copies of the input.
    assert_linear("quote parse", raw.len(), peak, 8, 16 << 10);
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
        // A v4 quote the strict sim parser accepts has sim or QE-report certification data;
        // TdQuote additionally checks that data.
        (Err(_), Ok(v4)) => assert_ne!(v4.cert_data_type, sim::CERT_DATA_TYPE_SIM),
        _ => {}
    }
    if let Ok(td) = &td {
        // The collateral lookup reads the PCK leaf's SGX extension: never a panic.
        let _ = PlatformKey::of(td);
    }
    assert_eq!(quote_kind(raw).is_ok(), td.is_ok());
    assert_eq!(image_hash_of(raw).is_ok(), td.is_ok());
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_parse_cleanly(raw in support::bytes(1500)) {
        parse_all(&raw);
    }

    #[test]
    fn mutated_quotes_parse_cleanly(raw in mutated_from(seeds(), 6)) {
        parse_all(&raw);
    }

    /// Any edit of a genuine sim quote is refused.
    #[test]
    fn mutated_sim_quotes_are_refused(edits in mutations(4)) {
        let raw = mutate(sim_quote(), &edits);
        let pinned: BTreeSet<[u8; 32]> = [sim::sim_root_id()].into();
        match sim::verify_quote(&raw, &pinned, SIM_AT) {
            Ok(q) => {
                prop_assert_eq!(&raw[..], sim_quote(), "an edited sim quote verified");
                prop_assert_eq!(q.body.report_data, [0x5a; 64]);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn policy_files_parse_cleanly(raw in prop_oneof![
        support::bytes(200),
        json::mutated_text(Just(serde_json::json!({
            "allow_sim": true,
            "allowed_image_hashes": [hex::encode([1u8; 32])],
            "allowed_mrtds": [hex::encode([2u8; 48])],
            "allowed_rtmrs": [[hex::encode([3u8; 48]), hex::encode([4u8; 48]),
                hex::encode([5u8; 48]), hex::encode([6u8; 48])]],
            "pinned_root_ids": [hex::encode([7u8; 32])],
            "accepted_tcb_statuses": ["SWHardeningNeeded"],
        })), 6),
    ]) {
        if let Err(e) = Policy::from_json(&raw) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn arbitrary_root_certificates_are_refused(der in support::bytes(400)) {
        prop_assert!(sim::root_key_id(&der).is_err());
    }
}

proptest! {
    // DCAP verification of what survives parsing costs milliseconds: fewer cases.
    #![proptest_config(config(128))]

    /// Any edit of a genuine tdx quote is refused, except trailing zero padding. Half the
    /// cases flip bytes in place before the PEM chain (header, body, signatures, QE report),
    /// so the quote still parses and the edit reaches the chain and DCAP checks.
    #[test]
    fn mutated_tdx_quotes_are_refused(
        which in 0usize..2,
        edits in mutations(3),
        flips in prop::collection::vec((any::<Index>(), 1u8..=255), 0..3),
    ) {
        let (quote, coll, at) = [
            (V4, v4_collateral().clone(), V4_AT),
            (V5_TD15EX, parse_collateral(V5_TD15EX_COLL).unwrap(), V5_TD15EX_AT),
        ][which].clone();
        let raw = if flips.is_empty() {
            mutate(quote, &edits)
        } else {
            let pem = quote.windows(5).position(|w| w == b"-----").unwrap();
            let mut raw = quote.to_vec();
            for (i, x) in &flips {
                raw[i.index(pem)] ^= x;
            }
            raw
        };
        match verify_quote(&raw, &coll, at) {
            Ok(v) => {
                prop_assert_eq!(trim_zeros(&raw), trim_zeros(quote), "an edited quote verified");
                prop_assert_eq!(v.tcb_status, "UpToDate");
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Collateral with one field edited: verification and the validity window never panic.
    #[test]
    fn mutated_collateral_is_handled_cleanly(
        field in 0usize..10,
        edits in json::edits(4),
        at in prop_oneof![Just(V4_AT), any::<u64>()],
    ) {
        let mut c = v4_collateral().clone();
        let text = |s: &mut String| {
            *s = String::from_utf8_lossy(&mutate(s.as_bytes(), &edits)).into_owned();
        };
        match field {
            0 => text(&mut c.tcb_info),
            1 => text(&mut c.qe_identity),
            2 => text(&mut c.tcb_info_issuer_chain),
            3 => text(&mut c.qe_identity_issuer_chain),
            4 => text(&mut c.pck_crl_issuer_chain),
            5 => c.pck_crl = mutate(&c.pck_crl, &edits),
            6 => c.root_ca_crl = mutate(&c.root_ca_crl, &edits),
            7 => c.tcb_info_signature = mutate(&c.tcb_info_signature, &edits),
            8 => c.qe_identity_signature = mutate(&c.qe_identity_signature, &edits),
            _ => c.pck_certificate_chain = Some(String::from_utf8_lossy(
                &mutate(c.tcb_info_issuer_chain.as_bytes(), &edits)).into_owned()),
        }
        let _ = collateral_window(&c);
        if let Err(e) = verify_quote(V4, &c, at) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn collateral_json_parses_cleanly(raw in prop_oneof![
        support::bytes(300),
        json::mutated_text(Just(serde_json::from_slice(V4_COLL).unwrap()), 6),
    ]) {
        if let Ok(c) = parse_collateral(&raw) {
            let _ = collateral_window(&c);
            let _ = verify_quote(V4, &c, V4_AT);
        }
    }
}

// ------------------------------------------------------------------ PCCS answers

type Routes = HashMap<String, (Vec<(&'static str, String)>, Vec<u8>)>;

/// Serves `routes` on 127.0.0.1; returns the base URL.
async fn serve(routes: Routes) -> String {
    let routes = Arc::new(routes);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let routes = routes.clone();
        async move {
            let pq = uri.path_and_query().map_or("", |p| p.as_str()).to_string();
            let (headers, body) = routes.get(&pq).cloned().unwrap_or_default();
            let mut b = axum::http::Response::builder();
            for (k, v) in headers {
                b = b.header(k, v);
            }
            b.body(axum::body::Body::from(body)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

proptest! {
    // Four HTTP round trips per case.
    #![proptest_config(config(48))]

    /// A PCCS whose answers (bodies or issuer-chain headers) are edited: the fetch yields
    /// collateral with a usable validity window or a clean error.
    #[test]
    fn garbled_pccs_answers_are_handled_cleanly(
        route in 0usize..4,
        header in any::<bool>(),
        edits in json::edits(4),
    ) {
        let key = PlatformKey::of(&TdQuote::parse(V4).unwrap()).unwrap();
        let mut responses = pccs_responses(v4_collateral(), &key);
        let (_, headers, body) = &mut responses[route];
        match headers.first_mut() {
            Some((_, value)) if header => {
                // Header values must stay visible ASCII for the HTTP stack; edit, then keep those.
                let edited = mutate(value.as_bytes(), &edits);
                *value = edited.into_iter().filter(|b| (0x20..0x7f).contains(b)).map(char::from)
                    .collect();
            }
            _ => *body = mutate(body, &edits),
        }
        let routes: Routes = responses.into_iter().map(|(p, h, b)| (p, (h, b))).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let opts = FetchOptions {
            timeout: Duration::from_secs(5),
            attempts: 1,
            ..FetchOptions::default()
        };
        let got = rt.block_on(async {
            let url = serve(routes).await;
            fetch_collateral(&url, &key, &opts).await
        });
        match got {
            Ok(c) => prop_assert!(collateral_window(&c).is_ok()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

// ------------------------------------------------------------------ regression corpus

/// Hand-made edge cases of the quote layout (offsets per the v4 layout in `quote.rs`).
fn quote_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let sim = sim_quote().to_vec();
    let set = |base: &[u8], at: usize, bytes: &[u8]| {
        let mut q = base.to_vec();
        q[at..at + bytes.len()].copy_from_slice(bytes);
        q
    };
    let mut v5_size = V5_TD15EX.to_vec();
    v5_size[50..54].copy_from_slice(&u32::MAX.to_le_bytes());
    vec![
        ("empty", vec![]),
        ("header only", sim[..48].to_vec()),
        ("max length zeros", vec![0; MAX_QUOTE_LEN]),
        (
            "over max length",
            [sim.clone(), vec![0; MAX_QUOTE_LEN]].concat(),
        ),
        ("sig_len u32::MAX", set(&sim, 632, &u32::MAX.to_le_bytes())),
        ("sig_len 0", set(&sim, 632, &0u32.to_le_bytes())),
        ("cert_len u32::MAX", set(&sim, 766, &u32::MAX.to_le_bytes())),
        (
            "cert type 5 (PCK chain) at top level",
            set(&sim, 764, &5u16.to_le_bytes()),
        ),
        (
            "cert type 6 with sim data",
            set(&sim, 764, &6u16.to_le_bytes()),
        ),
        (
            "sim chain length u32::MAX",
            set(&sim, 770, &u32::MAX.to_le_bytes()),
        ),
        (
            "sim chain first cert empty",
            set(&sim, 770, &0u32.to_le_bytes()),
        ),
        ("version 5 on a v4 body", set(&sim, 0, &5u16.to_le_bytes())),
        ("version 3", set(&sim, 0, &3u16.to_le_bytes())),
        ("v5 body size u32::MAX", v5_size),
        ("v5 body type 9", set(V5_TD15EX, 48, &9u16.to_le_bytes())),
        ("v4 with zero padding", [V4, &[0; 100][..]].concat()),
        ("v4 with non-zero padding", [V4, &[0, 0, 1][..]].concat()),
        (
            "v4 truncated by one",
            trim_zeros(V4)[..trim_zeros(V4).len() - 1].to_vec(),
        ),
    ]
}

#[test]
fn quote_corpus_parses_cleanly() {
    let pinned: BTreeSet<[u8; 32]> = [sim::sim_root_id()].into();
    for (name, raw) in quote_corpus() {
        parse_all(&raw);
        let sim_ok = sim::verify_quote(&raw, &pinned, SIM_AT).is_ok();
        let tdx_ok = verify_quote(&raw, v4_collateral(), V4_AT).is_ok();
        let padded = name == "v4 with zero padding";
        assert_eq!((sim_ok, tdx_ok), (false, padded), "{name}");
    }
    // The genuine ones.
    assert!(sim::verify_quote(sim_quote(), &pinned, SIM_AT).is_ok());
    assert_eq!(
        verify_quote(V4, v4_collateral(), V4_AT).unwrap().tcb_status,
        "UpToDate"
    );
    // The QE report's auth data length at its maximum: refused without reading past the end.
    let td = TdQuote::parse(V4).unwrap();
    let sig_start = V4.len() - td.sig_data.len() - (V4.len() - trim_zeros(V4).len());
    let auth = sig_start + 128 + 6 + 384 + 64;
    let mut raw = V4.to_vec();
    raw[auth..auth + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(TdQuote::parse(&raw).is_err());
}

/// PEM chains inside real quotes must be canonical: CRLF, blank lines or a trailing space
/// are refused (the PEM text is not signed), never a panic.
#[test]
fn pem_chain_variants_are_refused() {
    let text = b"-----BEGIN CERTIFICATE-----\n";
    let at = V4.windows(text.len()).position(|w| w == text).unwrap();
    for (from, to) in [
        (&b"-----\n"[..], &b"-----\r\n"[..]),
        (b"-----\nMI", b"-----\n\nMI"),
        (b"CERTIFICATE-----\n", b"CERTIFICATE----- \n"),
    ] {
        let pos = V4[at..]
            .windows(from.len())
            .position(|w| w == from)
            .unwrap()
            + at;
        // Zero padding follows the PEM text: insert, then drop one padding byte at the end, so
        // every length field stays right and only the PEM text changes.
        let mut raw = V4[..pos].to_vec();
        raw.extend_from_slice(to);
        raw.extend_from_slice(&V4[pos + from.len()..]);
        raw.truncate(V4.len());
        parse_all(&raw);
        let err = TdQuote::parse(&raw).unwrap_err().to_string();
        assert!(err.contains("canonical"), "{err}");
        assert!(verify_quote(&raw, v4_collateral(), V4_AT).is_err());
    }
}
