//! Smoke test: a `--quick` relay run at tiny sizes completes and yields sane JSON.
//! No timing is asserted; this only makes CI exercise the harness.

use cocoon_bench::{BenchArgs, Section};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_relay_run_produces_sane_json() {
    cocoon_attest::ensure_crypto_provider();
    let args = BenchArgs {
        sections: vec![Section::Relay],
        quick: true,
        relay_seconds: Some(0.1),
        relay_requests: Some(20),
        concurrency: Some(vec![1, 3]),
        chunks: Some(3),
        chunk_size: Some(8),
        ..BenchArgs::default()
    };
    let report = cocoon_bench::collect(&args, CancellationToken::new())
        .await
        .expect("bench runs");
    let json: serde_json::Value = serde_json::to_value(&report).expect("report serializes to JSON");
    let cells = json["relay"]["cells"].as_array().expect("relay cells");
    assert_eq!(cells.len(), 4, "2 modes × 2 concurrencies: {json}");
    for cell in cells {
        for path in ["direct", "through"] {
            let s = &cell[path];
            assert_eq!(s["errors"], 0, "{path} errors: {cell}");
            assert!(s["requests"].as_u64().unwrap() > 0, "{path}: {cell}");
            assert!(s["rps"].as_f64().unwrap() > 0.0, "{path}: {cell}");
            assert!(s["p50_ms"].as_f64().unwrap() > 0.0, "{path}: {cell}");
        }
        // Same answer both ways, plus the three cost fields the client adds to `usage`.
        let direct = cell["direct"]["bytes_per_response"].as_u64().unwrap();
        let through = cell["through"]["bytes_per_response"].as_u64().unwrap();
        assert!(
            through >= direct && through - direct <= 120,
            "answers differ by more than the cost fields: {cell}"
        );
    }
    assert!(json["scale"].is_null());
    assert_eq!(json["targets"].as_array().unwrap().len(), 5);
    assert!(json["machine"]["nproc"].as_u64().unwrap() >= 1);
    assert!(!report.table().is_empty() && report.markdown().starts_with("# Benchmarks"));
}
