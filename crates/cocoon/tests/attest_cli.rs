//! `cocoon attest` end to end against the real TDX test quotes (crates/attest/testdata/tdx, MIT,
//! from dcap-qvl) and sim quotes made by the binary itself.

use std::path::PathBuf;
use std::process::{Command, Output};

fn testdata(name: &str) -> String {
    format!(
        "{}/../attest/testdata/tdx/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn cocoon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run cocoon")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cocoon-attest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

fn verify_real(quote: &str, collateral: &str, at: &str) -> Output {
    cocoon(&[
        "attest",
        "verify",
        "--quote",
        &testdata(quote),
        "--collateral",
        &testdata(collateral),
        "--at",
        at,
    ])
}

#[test]
fn verifies_real_v4_quote_and_prints_measurements() {
    let o = verify_real("tdx_quote", "tdx_quote_collateral.json", "1750332747");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(field(&out, "kind"), "tdx");
    assert_eq!(field(&out, "tcb_status"), "UpToDate");
    for key in ["mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"] {
        assert_eq!(field(&out, key).len(), 96, "{key}");
    }
    assert_eq!(field(&out, "report_data").len(), 128);
    // image-hash agrees with verify.
    let h = cocoon(&["attest", "image-hash", "--quote", &testdata("tdx_quote")]);
    assert!(h.status.success(), "{}", stderr(&h));
    assert_eq!(stdout(&h).trim(), field(&out, "image_hash"));
    assert_eq!(stdout(&h).trim().len(), 64);
}

#[test]
fn verifies_real_v5_td15_quote() {
    let o = verify_real(
        "tdx_quote_td15ex",
        "tdx_quote_td15ex_collateral.json",
        "1791421786",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(field(&stdout(&o), "tcb_status"), "UpToDate");
}

#[test]
fn invalid_quotes_exit_nonzero_with_the_reason() {
    let o = verify_real(
        "tdx_quote_outdated",
        "tdx_quote_outdated_collateral.json",
        "1771415931",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no matching TCB level"),
        "{}",
        stderr(&o)
    );

    // Three years later the collateral has expired.
    let o = verify_real("tdx_quote", "tdx_quote_collateral.json", "1845000000");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("collateral expired"), "{}", stderr(&o));

    // No collateral: a real quote cannot be verified.
    let o = cocoon(&["attest", "verify", "--quote", &testdata("tdx_quote")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no DCAP collateral"), "{}", stderr(&o));

    // One flipped bit.
    let mut raw = std::fs::read(testdata("tdx_quote")).unwrap();
    raw[300] ^= 1;
    let bad = tmp("flipped.quote");
    std::fs::write(&bad, &raw).unwrap();
    let o = cocoon(&[
        "attest",
        "verify",
        "--quote",
        bad.to_str().unwrap(),
        "--collateral",
        &testdata("tdx_quote_collateral.json"),
        "--at",
        "1750332747",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("signature is invalid"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sim_quote_roundtrip_needs_a_sim_policy() {
    let q = tmp("sim.quote");
    let o = cocoon(&[
        "attest",
        "quote",
        "--kind",
        "sim",
        "--label",
        "worker",
        "--out",
        q.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Production policy (the default) refuses sim evidence.
    let o = cocoon(&["attest", "verify", "--quote", q.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("`sim` is not allowed"),
        "{}",
        stderr(&o)
    );

    let policy = tmp("sim-policy.json");
    std::fs::write(&policy, br#"{"allow_sim": true}"#).unwrap();
    let o = cocoon(&[
        "attest",
        "verify",
        "--quote",
        q.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(field(&out, "kind"), "sim");
    let image = field(&out, "image_hash").to_string();

    // An image allowlist that does not list it refuses it.
    std::fs::write(
        &policy,
        format!(
            r#"{{"allow_sim": true, "allowed_image_hashes": ["{}"]}}"#,
            "00".repeat(32)
        ),
    )
    .unwrap();
    let o = cocoon(&[
        "attest",
        "verify",
        "--quote",
        q.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&image), "{}", stderr(&o));

    // Hex on stdout works as a quote file too.
    let o = cocoon(&["attest", "quote", "--kind", "sim", "--label", "worker"]);
    assert!(o.status.success());
    let hexq = tmp("sim.hex");
    std::fs::write(&hexq, stdout(&o)).unwrap();
    let h = cocoon(&["attest", "image-hash", "--quote", hexq.to_str().unwrap()]);
    assert_eq!(stdout(&h).trim(), image);
}

#[test]
fn tdx_quote_outside_a_td_fails_clearly() {
    if std::path::Path::new("/sys/kernel/config/tsm/report").exists() {
        return; // a real TD (or configfs-tsm host): nothing to check here
    }
    let o = cocoon(&["attest", "quote", "--kind", "tdx"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not running inside a TDX guest"),
        "{}",
        stderr(&o)
    );
}

/// A minimal PCCS on 127.0.0.1 (HTTP/1.1, one request per connection) serving the real
/// collateral of `tdx_quote` split into the PCS v4 endpoints; returns its base URL.
fn mock_pccs() -> String {
    use cocoon_attest::pccs::{pccs_responses, PlatformKey};
    use std::io::{Read, Write};
    let raw = std::fs::read(testdata("tdx_quote")).unwrap();
    let quote = cocoon_attest::td_quote::TdQuote::parse(&raw).unwrap();
    let json = std::fs::read(testdata("tdx_quote_collateral.json")).unwrap();
    let collateral = cocoon_attest::tdx::parse_collateral(&json).unwrap();
    let routes = pccs_responses(&collateral, &PlatformKey::of(&quote).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req);
            let path = text.split_whitespace().nth(1).unwrap_or("");
            let mut out = Vec::new();
            match routes.iter().find(|(p, _, _)| p == path) {
                Some((_, headers, body)) => {
                    out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
                    for (k, v) in headers {
                        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                    }
                    out.extend_from_slice(
                        format!(
                            "content-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    out.extend_from_slice(body);
                }
                None => out.extend_from_slice(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                ),
            }
            let _ = stream.write_all(&out);
        }
    });
    url
}

#[test]
fn verifies_real_quote_with_collateral_from_a_pccs_url() {
    let url = mock_pccs();
    let args = |at: &str| -> Output {
        cocoon(&[
            "attest",
            "verify",
            "--quote",
            &testdata("tdx_quote"),
            "--pccs-url",
            &url,
            "--at",
            at,
        ])
    };
    let o = args("1750332747");
    assert!(o.status.success(), "{}", stderr(&o));
    let file = verify_real("tdx_quote", "tdx_quote_collateral.json", "1750332747");
    assert_eq!(stdout(&o), stdout(&file), "same report as with the file");
    assert_eq!(field(&stdout(&o), "tcb_status"), "UpToDate");

    // Outside the fetched collateral's window: refused with the reason.
    let o = args("1850000000");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("expired"), "{}", stderr(&o));

    // A PCCS that is not there: a clear fetch error, no panic.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let o = cocoon(&[
        "attest",
        "verify",
        "--quote",
        &testdata("tdx_quote"),
        "--pccs-url",
        &dead_url,
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("fetch DCAP collateral"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // --collateral and --pccs-url together are refused.
    let o = cocoon(&[
        "attest",
        "verify",
        "--quote",
        &testdata("tdx_quote"),
        "--pccs-url",
        &url,
        "--collateral",
        &testdata("tdx_quote_collateral.json"),
    ]);
    assert!(!o.status.success());
}
