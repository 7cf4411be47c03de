//! Load generators: a closed loop of `c` keep-alive HTTP/1.1 connections (relay section) and
//! `n` simultaneous streams over HTTP/2 connections (scale section).

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// OpenAI chat request body. Streaming asks for usage, as the worker forces it on every
/// streaming request anyway, so direct and relayed answers carry the same bytes.
pub fn chat_body(streaming: bool, content: &str) -> Bytes {
    let mut body = serde_json::json!({
        "model": crate::MODEL,
        "messages": [{"role": "user", "content": content}],
        "stream": streaming,
    });
    if streaming {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    Bytes::from(body.to_string())
}

/// One finished request.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub latency: Duration,
    /// Until the first body bytes.
    pub ttfb: Duration,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    pub samples: Vec<Sample>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

/// Sends one request and reads the whole answer.
async fn one(
    client: &reqwest::Client,
    url: &str,
    body: &Bytes,
    streaming: bool,
) -> Result<Sample, String> {
    let start = Instant::now();
    let mut response = client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let mut ttfb = None;
    let mut bytes = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if ttfb.is_none() {
                    ttfb = Some(start.elapsed());
                }
                bytes += chunk.len() as u64;
                tail.extend_from_slice(&chunk);
                if tail.len() > 64 {
                    tail.drain(..tail.len() - 64);
                }
            }
            Ok(None) => break,
            Err(e) => return Err(format!("body: {e}")),
        }
    }
    let latency = start.elapsed();
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: …{}",
            String::from_utf8_lossy(&tail).trim()
        ));
    }
    if streaming && !tail.ends_with(b"data: [DONE]\n\n") {
        return Err(format!(
            "stream did not end with [DONE]: …{}",
            String::from_utf8_lossy(&tail).trim()
        ));
    }
    Ok(Sample {
        latency,
        ttfb: ttfb.unwrap_or(latency),
        bytes,
    })
}

/// `concurrency` tasks, each sending requests back to back on its own keep-alive connection,
/// until `max_requests` were started or `max_time` passed. Each task first sends one untimed
/// warm-up request (connection set-up is not measured).
pub async fn closed_loop(
    client: reqwest::Client,
    url: String,
    body: Bytes,
    streaming: bool,
    concurrency: usize,
    max_requests: u64,
    max_time: Duration,
) -> LoadResult {
    let concurrency = concurrency.max(1);
    let warmed = Arc::new(Barrier::new(concurrency + 1));
    let go = Arc::new(Barrier::new(concurrency + 1));
    let started = Arc::new(AtomicU64::new(0));
    let deadline = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (warmed, go, started, deadline) = (
            warmed.clone(),
            go.clone(),
            started.clone(),
            deadline.clone(),
        );
        tasks.spawn(async move {
            let mut result = LoadResult::default();
            if let Err(e) = one(&client, &url, &body, streaming).await {
                result.errors += 1;
                result.first_error = Some(format!("warm-up: {e}"));
            }
            warmed.wait().await;
            go.wait().await;
            let deadline = *deadline.get().expect("deadline set before go");
            while Instant::now() < deadline
                && started.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                match one(&client, &url, &body, streaming).await {
                    Ok(s) => result.samples.push(s),
                    Err(e) => {
                        result.errors += 1;
                        result.first_error.get_or_insert(e);
                    }
                }
            }
            result
        });
    }
    warmed.wait().await;
    let start = Instant::now();
    let _ = deadline.set(start + max_time);
    go.wait().await;
    let mut total = LoadResult::default();
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap_or_else(|e| LoadResult {
            errors: 1,
            first_error: Some(format!("load task: {e}")),
            ..Default::default()
        });
        total.samples.extend(r.samples);
        total.errors += r.errors;
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Outcome of [`open_streams`].
#[derive(Debug, Default)]
pub struct StreamsResult {
    pub completed: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// Failures by kind (message without the variable parts), most frequent first.
    pub error_kinds: Vec<(String, u64)>,
    /// Most streams that had their response headers and had not finished, at one moment.
    pub peak_open: usize,
    /// Per completed stream, request to end.
    pub durations: Vec<Duration>,
    pub elapsed: Duration,
}

/// Starts `n` streaming requests at once, `per_connection` of them on each HTTP/2 (prior
/// knowledge) connection, and waits for all of them.
pub async fn open_streams(
    url: &str,
    body: Bytes,
    n: usize,
    per_connection: usize,
) -> anyhow::Result<StreamsResult> {
    let connections = n.div_ceil(per_connection.max(1)).max(1);
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(
            reqwest::Client::builder()
                .no_proxy()
                .http2_prior_knowledge()
                .build()?,
        );
    }
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let client = clients[i / per_connection.max(1)].clone();
        let (url, body, open, peak) = (url.to_string(), body.clone(), open.clone(), peak.clone());
        tasks.spawn(async move {
            let t0 = Instant::now();
            let mut response = client
                .post(&url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("send: {e}"))?;
            let now_open = open.fetch_add(1, Ordering::Relaxed) + 1;
            peak.fetch_max(now_open, Ordering::Relaxed);
            let status = response.status();
            let mut tail: Vec<u8> = Vec::new();
            let read = async {
                while let Some(chunk) = response.chunk().await.map_err(|e| format!("body: {e}"))? {
                    tail.extend_from_slice(&chunk);
                    if tail.len() > 64 {
                        tail.drain(..tail.len() - 64);
                    }
                }
                Ok::<_, String>(())
            }
            .await;
            open.fetch_sub(1, Ordering::Relaxed);
            read?;
            if !status.is_success() || !tail.ends_with(b"data: [DONE]\n\n") {
                return Err(format!(
                    "HTTP {status}: …{}",
                    String::from_utf8_lossy(&tail).trim()
                ));
            }
            Ok(t0.elapsed())
        });
    }
    let mut result = StreamsResult::default();
    let mut kinds = std::collections::HashMap::<String, u64>::new();
    while let Some(r) = tasks.join_next().await {
        let e = match r {
            Ok(Ok(d)) => {
                result.completed += 1;
                result.durations.push(d);
                continue;
            }
            Ok(Err(e)) => e,
            Err(e) => format!("task: {e}"),
        };
        result.failed += 1;
        *kinds.entry(error_kind(&e)).or_default() += 1;
        result.first_error.get_or_insert(e);
    }
    result.error_kinds = kinds.into_iter().collect();
    result
        .error_kinds
        .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    result.elapsed = start.elapsed();
    result.peak_open = peak.load(Ordering::Relaxed);
    Ok(result)
}

/// An error message with digits dropped and the length bounded, so equal failures group.
fn error_kind(e: &str) -> String {
    e.chars()
        .filter(|c| !c.is_ascii_digit())
        .take(120)
        .collect()
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
