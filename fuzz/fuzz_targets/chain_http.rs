//! What the chain decodes: the registry JSON (`LocalChain::open` reads it from a file,
//! `RemoteChain` from `GET /registry`), the answers a `RemoteChain` decodes, and the bodies,
//! paths and queries of `cocoon chain serve`'s HTTP API (`cocoon_chain::http::router`, over an
//! in-memory `LocalChain`). Properties (as in `crates/chain/tests/fuzz_http.rs`):
//!
//! - decoding never panics, memory stays linear, and what decodes round-trips exactly;
//! - the server answers every request with 2xx or a 4xx carrying an error message: never a
//!   5xx (a panic in a handler surfaces as 500 through `spawn_blocking`); an accepted
//!   `/submit` adds exactly one record, nothing else changes the history, and time never goes
//!   back.
//!
//! Input: the whole input is decoded as every answer type; each line is also a request:
//! `S<body>` POST /submit, `A<body>` POST /advance, `H<query>` GET /history?<query>,
//! `B<address>` GET /balance/<address>, `G<n>` GET /registry, /state or /time.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use cocoon_chain::http::{router, ErrorBody};
use cocoon_chain::{Chain, Clock, LocalChain, TxRecord};
use cocoon_fuzz::chain_oracle::decode_all;
use cocoon_fuzz::{chain_registry, json_budget, within};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower::ServiceExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
}

/// Percent-encodes what may not stand in a URI; `keep` bytes pass as they are.
fn uri_text(raw: &[u8], keep: &[u8]) -> String {
    let mut s = String::new();
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-_.~%".contains(&b) || keep.contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The request a line asks for, if any.
fn request(line: &[u8]) -> Option<(bool, axum::http::Request<Body>)> {
    let (&kind, rest) = line.split_first()?;
    let b = axum::http::Request::builder();
    let (submit, r) = match kind {
        b'S' => (
            true,
            b.method("POST")
                .uri("/submit")
                .body(Body::from(rest.to_vec())),
        ),
        b'A' => (
            false,
            b.method("POST")
                .uri("/advance")
                .body(Body::from(rest.to_vec())),
        ),
        b'H' => (
            false,
            b.uri(format!("/history?{}", uri_text(rest, b"=&")))
                .body(Body::empty()),
        ),
        b'B' => (
            false,
            b.uri(format!("/balance/{}", uri_text(rest, b"")))
                .body(Body::empty()),
        ),
        b'G' => {
            let path = ["/registry", "/state", "/time"][rest.first().map_or(0, |n| n % 3) as usize];
            (false, b.uri(path).body(Body::empty()))
        }
        _ => return None,
    };
    Some((submit, r.ok()?))
}

/// Sends each line's request to a fresh chain server, checking every answer.
fn serve_lines(data: &[u8]) {
    let chain: Arc<dyn Chain> =
        LocalChain::with_clock(chain_registry().clone(), Clock::manual(1_000));
    let app = router(chain.clone());
    runtime().block_on(async {
        for line in data.split(|&b| b == b'\n') {
            let Some((submit, req)) = request(line) else {
                continue;
            };
            let what = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
            let before = chain.tip().unwrap();
            let resp = app
                .clone()
                .oneshot(req)
                .await
                .expect("the router is infallible");
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let after = chain.tip().unwrap();
            assert!(
                [200, 400, 404, 409, 413].contains(&status),
                "{what:?} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if status == 200 {
                assert!(
                    serde_json::from_slice::<Value>(&body).is_ok(),
                    "{what:?}: not JSON"
                );
            } else if status != 404 {
                // The handlers answer `{"error": …}`; axum's own rejections answer plain text.
                let message = serde_json::from_slice::<ErrorBody>(&body)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
                assert!(!message.is_empty(), "{what:?} {status}: empty error");
            }
            if submit && status == 200 {
                let rec: TxRecord = serde_json::from_slice(&body).unwrap();
                assert_eq!((rec.seq, after.seq), (before.seq + 1, before.seq + 1));
            } else {
                assert_eq!(after.seq, before.seq, "{what:?} changed the history");
            }
            assert!(after.now >= before.now, "time went back");
        }
    });
}

fuzz_target!(init: { chain_registry(); runtime(); }, |data: &[u8]| {
    within("chain decode", json_budget(data.len()), || decode_all(data));
    serve_lines(data);
});
