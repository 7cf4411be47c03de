//! Relay overhead: the same requests directly at a test engine and through a whole in-process
//! network (client API → proxy → worker → test engine with the same config).

use crate::load::{chat_body, closed_loop, percentile, LoadResult};
use crate::report::{RelayCell, RelayReport, Stats};
use crate::{progress, Mode, RelayPlan, MODEL};
use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use cocoon_devnet::{DevnetConfig, EngineChoice};
use cocoon_engine::test_engine::{TestEngine, TestEngineConfig};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(plan: &RelayPlan, shutdown: &CancellationToken) -> Result<RelayReport> {
    let engine_config = TestEngineConfig {
        models: vec![MODEL.into()],
        chunks: plan.chunks,
        chunk_size: plan.chunk_size,
        chunk_delay: Duration::ZERO,
    };
    let stop = shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();

    // One test engine serves both paths. It is served here with TCP_NODELAY, as real engines
    // (uvicorn under vLLM/SGLang) do; `TestEngine::serve` leaves Nagle on, which holds every
    // SSE event after the first until the reader's delayed ACK (~40 ms) whenever the
    // events are written apart (`--engine-nagle` shows it).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let engine_base = format!("http://{}/v1", listener.local_addr()?);
    let direct_url = format!("{engine_base}/chat/completions");
    let engine = TestEngine::new(engine_config.clone());
    if plan.engine_nagle {
        tokio::spawn(engine.serve(listener, stop.clone()));
    } else {
        let app = engine.router();
        let stop = stop.clone();
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }

    let mut config = DevnetConfig::for_tests(1, engine_config);
    config.engine = EngineChoice::External {
        base_url: engine_base,
        model: MODEL.into(),
        tokenizer: None,
    };
    config.proxy_http_listen = None;
    config.worker_http_listen = None;
    config.max_active_requests = 100_000;
    config.engine_probe_interval = Duration::from_secs(1);
    let devnet = cocoon_devnet::start(config, stop.clone())
        .await
        .context("starting the in-process network")?;
    devnet
        .wait_ready(Duration::from_secs(30))
        .await
        .context("in-process network not ready")?;
    let through_url = format!("{}/chat/completions", devnet.api_url);

    let max_time = Duration::from_secs_f64(plan.seconds);
    let mut cells = Vec::new();
    for streaming in plan.modes.iter().map(|m| *m == Mode::Stream) {
        let body = chat_body(streaming, "hello there cocoon");
        for &c in &plan.concurrency {
            if shutdown.is_cancelled() {
                anyhow::bail!("interrupted");
            }
            let mode = if streaming { "stream" } else { "non-stream" };
            progress(format_args!("relay {mode} c={c}: direct"));
            let direct = closed_loop(
                http1_client()?,
                direct_url.clone(),
                body.clone(),
                streaming,
                c,
                plan.max_requests,
                max_time,
            )
            .await;
            progress(format_args!("relay {mode} c={c}: through the network"));
            let through = closed_loop(
                http1_client()?,
                through_url.clone(),
                body.clone(),
                streaming,
                c,
                plan.max_requests,
                max_time,
            )
            .await;
            cells.push(RelayCell::new(streaming, c, stats(direct), stats(through)));
        }
    }
    Ok(RelayReport {
        engine_nodelay: !plan.engine_nagle,
        chunks: plan.chunks,
        chunk_size: plan.chunk_size,
        seconds_per_cell: plan.seconds,
        max_requests_per_cell: plan.max_requests,
        cells,
    })
}

/// HTTP/1.1 keep-alive client: one connection per concurrent request, kept across requests.
fn http1_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .build()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(r: LoadResult) -> Stats {
    let mut lat: Vec<Duration> = r.samples.iter().map(|s| s.latency).collect();
    let mut ttfb: Vec<Duration> = r.samples.iter().map(|s| s.ttfb).collect();
    lat.sort_unstable();
    ttfb.sort_unstable();
    let n = r.samples.len() as u64;
    let secs = r.elapsed.as_secs_f64();
    Stats {
        requests: n,
        errors: r.errors,
        first_error: r.first_error,
        seconds: secs,
        rps: if secs > 0.0 { n as f64 / secs } else { 0.0 },
        p50_ms: ms(percentile(&lat, 50.0)),
        p90_ms: ms(percentile(&lat, 90.0)),
        p99_ms: ms(percentile(&lat, 99.0)),
        ttfb_p50_ms: ms(percentile(&ttfb, 50.0)),
        ttfb_p90_ms: ms(percentile(&ttfb, 90.0)),
        bytes_per_response: r
            .samples
            .iter()
            .map(|s| s.bytes)
            .sum::<u64>()
            .checked_div(n)
            .unwrap_or(0),
    }
}
