//! Per-request backpressure: an app that stops reading a huge stream holds back only its
//! own request (all the way to the engine), never the others on the same links.

mod common;

use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_stalled_reader_does_not_stall_other_requests() {
    // 40 MiB answer: far more than every flow-control window and socket buffer on the path.
    let net = start_simple(
        1,
        TestEngineConfig {
            chunks: 40_000,
            chunk_size: 1024,
            ..Default::default()
        },
    )
    .await;
    let big = json!({"model": net.devnet.model, "messages": [{"role": "user", "content": "a lot"}], "stream": true, "max_tokens": 40_000});
    let stalled = net.post("/v1/chat/completions", &big).await;
    assert_eq!(stalled.status(), 200);
    // Do not read `stalled`. Let buffers fill up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let small = json!({"model": net.devnet.model, "messages": [{"role": "user", "content": "hi"}], "stream": true, "max_tokens": 3});
        let start = Instant::now();
        let res = net.post("/v1/chat/completions", &small).await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(text.trim_end().ends_with("data: [DONE]"));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "small request took {:?}",
            start.elapsed()
        );
    }
    // The engine itself was held back: the big answer is not finished while nobody reads it.
    let stats = net.devnet.engines[0].stats();
    assert_eq!(
        stats.requests_completed, 5,
        "only the small requests finished: {stats:?}"
    );
    // Reading resumes the stream, and it completes.
    let text = stalled.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert!(text.len() > 40_000 * 1024);
}
