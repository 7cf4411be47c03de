//! `cocoon engine bench`: the built-in engine's speed on this machine — load time, prompt
//! processing and decoding tokens/s for one request, and aggregate tokens/s with several
//! requests at once (the continuous batching at work).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use cocoon_engine::Engine;
use futures::StreamExt;
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct EngineBenchArgs {
    /// GGUF file (default: the default model, fetched if missing).
    #[arg(long)]
    model: Option<std::path::PathBuf>,
    /// CPU threads (default: half the logical cores).
    #[arg(long)]
    threads: Option<u32>,
    /// Tokens generated per request.
    #[arg(long, default_value_t = 128)]
    tokens: u32,
    /// Concurrent requests for the batching figure.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
}

/// One measured request.
struct Run {
    prompt_tokens: u64,
    completion_tokens: u64,
    ttft: Duration,
    total: Duration,
}

async fn one(engine: &cocoon_llama::LlamaEngine, tokens: u32, seed: u32) -> Result<Run> {
    let body = json!({
        "messages": [{"role": "user", "content": format!(
            "Write a long, detailed story about a lighthouse keeper (take {seed}).")}],
        "max_tokens": tokens, "temperature": 0.8, "seed": seed,
        "stream": true, "stream_options": {"include_usage": true},
    });
    let started = Instant::now();
    let resp = engine
        .call("/v1/chat/completions", Bytes::from(body.to_string()))
        .await?;
    if resp.status != 200 {
        bail!("engine answered HTTP {}", resp.status);
    }
    let mut stream = resp.body;
    let (mut ttft, mut buf) = (None, Vec::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if ttft.is_none() && chunk.windows(9).any(|w| w == b"\"content\"") {
            ttft = Some(started.elapsed());
        }
        buf.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let text = String::from_utf8_lossy(&buf);
    let usage = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
        .context("no usage in the answer")?;
    Ok(Run {
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        ttft: ttft.unwrap_or(total),
        total,
    })
}

pub async fn run(args: EngineBenchArgs) -> Result<()> {
    let path = match args.model {
        Some(p) => p,
        None => tokio::task::spawn_blocking(cocoon_llama::fetch::ensure_default_model).await??,
    };
    let mut config = cocoon_llama::LlamaConfig::new(path.clone());
    config.threads = args.threads;
    config.slots = args.concurrency.max(1);
    config.context_per_slot = (args.tokens + 256).max(512);
    let load_started = Instant::now();
    let engine =
        tokio::task::spawn_blocking(move || cocoon_llama::LlamaEngine::load(&config)).await??;
    let load = load_started.elapsed();
    println!("model       {}", path.display());
    println!(
        "threads     {}",
        args.threads.unwrap_or_else(cocoon_llama::default_threads)
    );
    println!("load        {:.0} ms", load.as_secs_f64() * 1000.0);
    // Warm-up: first-touch of the memory-mapped weights.
    one(&engine, 8, 0).await?;
    let single = one(&engine, args.tokens, 1).await?;
    let decode_s = (single.total - single.ttft).as_secs_f64().max(1e-9);
    println!(
        "1 request   prompt {} tokens in {:.0} ms ({:.0} tokens/s); decode {} tokens at {:.1} tokens/s",
        single.prompt_tokens,
        single.ttft.as_secs_f64() * 1000.0,
        single.prompt_tokens as f64 / single.ttft.as_secs_f64().max(1e-9),
        single.completion_tokens,
        single.completion_tokens.saturating_sub(1) as f64 / decode_s,
    );
    let started = Instant::now();
    let runs = futures::future::join_all(
        (0..args.concurrency.max(1)).map(|i| one(&engine, args.tokens, 10 + i)),
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    let mut generated = 0;
    for r in runs {
        generated += r?.completion_tokens;
    }
    println!(
        "{} at once  {} tokens in {:.2} s: {:.1} tokens/s in total",
        args.concurrency.max(1),
        generated,
        wall,
        generated as f64 / wall.max(1e-9)
    );
    Ok(())
}
