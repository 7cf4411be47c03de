//! The TON HTTP API client against a local HTTP server that answers with recorded toncenter
//! v2 responses (`tests/recorded/`), and with the failures real endpoints produce: 429 with
//! and without `Retry-After`, `ok:false` bodies, 5xx, client errors, oversized bodies.

mod common;

use cocoon_ton::api::{AccountStatus, ApiConfig, StackValue, TonApi, TxId};
use cocoon_ton::{parse_address, TonError};
use common::{failure, recorded, serve};
use std::time::{Duration, Instant};

fn api(url: &str, key: Option<&str>) -> TonApi {
    let mut config = ApiConfig::new(url, key.map(String::from));
    config.requests_per_second = 1000.0;
    config.backoff = Duration::from_millis(10);
    config.max_attempts = 4;
    TonApi::new(config).unwrap()
}

fn proxy() -> cocoon_ton::TonAddress {
    parse_address("0:1111111111111111111111111111111111111111111111111111111111111111").unwrap()
}

#[tokio::test]
async fn reads_an_account_from_a_recorded_answer() {
    let (server, url) = serve().await;
    server.then(
        "getAddressInformation",
        vec![
            recorded("getAddressInformation"),
            recorded("getAddressInformation-uninit"),
        ],
    );
    let api = api(&url, Some("secret-key"));
    let info = api.account(&proxy()).await.unwrap();
    assert_eq!(info.balance, 4_217_830_001);
    assert_eq!(info.status, AccountStatus::Active);
    assert!(!info.code.is_empty());
    assert_eq!(
        info.last_transaction,
        Some(TxId {
            lt: 47_123_456_000_003,
            hash: "q6uRS2cPo3kBKd6oXbZt7mjJ+Hm4UvA4cFQVmtE9wqk=".into()
        })
    );
    let fresh = api.account(&proxy()).await.unwrap();
    assert_eq!(
        (fresh.balance, fresh.status, fresh.last_transaction),
        (0, AccountStatus::Uninitialized, None)
    );
    let hits = server.hits();
    assert_eq!(hits[0].api_key.as_deref(), Some("secret-key"));
    assert!(
        hits[0].query.contains("address=0%3A1111"),
        "the raw address is sent: {}",
        hits[0].query
    );
}

#[tokio::test]
async fn parses_get_method_stacks_and_transactions() {
    let (server, url) = serve().await;
    server.then("runGetMethod", vec![recorded("runGetMethod")]);
    server.then("getTransactions", vec![recorded("getTransactions")]);
    let api = api(&url, None);
    let r = api
        .run_get_method(&proxy(), "proxy_data", &[7, -1])
        .await
        .unwrap();
    assert_eq!((r.exit_code, r.gas_used), (0, 2479));
    assert_eq!(
        r.stack[..4],
        [
            StackValue::Int(1),
            StackValue::Int(0),
            StackValue::Int(1_000_000_000),
            StackValue::Int(-5)
        ]
    );
    assert_eq!(
        r.stack[4],
        StackValue::BigInt("0xffffffffffffffffffffffffffffffffffffffff".into())
    );
    assert!(matches!(&r.stack[5], StackValue::Cell(boc) if !boc.is_empty()));
    assert!(matches!(r.stack[6], StackValue::Other(_)));
    let sent: serde_json::Value = serde_json::from_str(&server.hits()[0].body).unwrap();
    assert_eq!(sent["method"], "proxy_data");
    assert_eq!(
        sent["stack"],
        serde_json::json!([["num", "7"], ["num", "-1"]])
    );

    let before = TxId {
        lt: 47_123_456_000_003,
        hash: "q6uRS2cPo3kBKd6oXbZt7mjJ+Hm4UvA4cFQVmtE9wqk=".into(),
    };
    let txs = api.transactions(&proxy(), 2, Some(&before)).await.unwrap();
    assert_eq!(txs.len(), 2);
    assert_eq!((txs[0].utime, txs[0].fee), (1_763_799_990, 2_345_678));
    let inbound = txs[0].in_msg.as_ref().unwrap();
    assert_eq!(inbound.value, 200_000_000);
    assert!(inbound.body.is_some());
    assert_eq!(txs[0].out_msgs[0].value, 160_000_000);
    assert_eq!(
        txs[1].in_msg.as_ref().unwrap().body,
        None,
        "an empty body is none"
    );
    let q = &server.hits()[1].query;
    assert!(
        q.contains("lt=47123456000003") && q.contains("limit=2"),
        "{q}"
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_then_succeed() {
    let (server, url) = serve().await;
    let limited = r#"{"ok":false,"error":"Ratelimit exceed","code":429}"#;
    server.then(
        "sendBocReturnHash",
        vec![
            failure(429, Some("0"), limited),
            failure(200, None, limited), // some providers say 429 in a 200 body
            failure(502, None, "<html>bad gateway</html>"),
            recorded("sendBocReturnHash"),
        ],
    );
    let api = api(&url, None);
    let hash = api.send_boc(&[0xb5, 0xee, 0x9c, 0x72]).await.unwrap();
    assert_eq!(hash, "Qk9DaGFzaEJPQ2hhc2hCT0NoYXNoQk9DaGFzaEJPQ2g=");
    let hits = server.hits();
    assert_eq!(hits.len(), 4);
    let sent: serde_json::Value = serde_json::from_str(&hits[0].body).unwrap();
    assert_eq!(sent["boc"], "te6ccg==");
}

#[tokio::test]
async fn client_errors_fail_at_once_with_the_apis_message() {
    let (server, url) = serve().await;
    server.then(
        "sendBocReturnHash",
        vec![failure(
            400,
            None,
            r#"{"ok":false,"error":"LITE_SERVER_UNKNOWN: cannot apply external message to current state","code":400}"#,
        )],
    );
    let e = api(&url, None)
        .send_boc(b"x")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot apply external message"), "{e}");
    assert!(e.contains(&url), "names the endpoint: {e}");
    assert_eq!(server.hits().len(), 1, "not retried");
}

#[tokio::test]
async fn a_persistent_rate_limit_is_reported_as_such() {
    let (server, url) = serve().await;
    server.then(
        "getAddressInformation",
        vec![failure(429, Some("0"), "{}"); 4],
    );
    let e = api(&url, None).account(&proxy()).await.unwrap_err();
    assert!(
        matches!(e, TonError::RateLimited { attempts: 4, .. }),
        "{e}"
    );
}

#[tokio::test]
async fn oversized_and_malformed_answers_are_errors_not_panics() {
    let (server, url) = serve().await;
    let huge = format!(r#"{{"ok":true,"result":"{}"}}"#, "x".repeat(9 << 20));
    server.then(
        "getAddressInformation",
        vec![
            failure(200, None, &huge),
            failure(200, None, r#"{"ok":true,"result":{"balance":[1]}}"#),
            failure(200, None, "not json"),
        ],
    );
    let api = api(&url, None);
    for expected in ["larger than", "unexpected response", "HTTP 200"] {
        let e = api.account(&proxy()).await.unwrap_err().to_string();
        assert!(e.contains(expected), "{expected}: {e}");
    }
}

#[tokio::test]
async fn requests_are_paced_to_the_configured_rate() {
    let (server, url) = serve().await;
    server.then(
        "getAddressInformation",
        vec![recorded("getAddressInformation"); 4],
    );
    let mut config = ApiConfig::new(&url, None);
    config.requests_per_second = 20.0;
    let api = TonApi::new(config).unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        api.account(&proxy()).await.unwrap();
    }
    // Four requests at 20 per second: the last leaves at least 3 × 50 ms after the first.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(150),
        "4 requests in {elapsed:?}"
    );
    let hits = server.hits();
    assert_eq!(
        hits.iter()
            .filter(|h| h.method == "getAddressInformation")
            .count(),
        4
    );
}
