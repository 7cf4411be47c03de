//! Scale: one proxy as a child process (`cocoon proxy --config`), N in-process workers on
//! in-process test engines, an in-process client, and thousands of simultaneous slow streams
//! sent to the client API over HTTP/2. The proxy's peak RSS (VmHWM) and CPU time (utime+stime)
//! are read from /proc, so they are the proxy's alone.

use crate::engine::InProcessEngine;
use crate::load::{chat_body, open_streams, percentile};
use crate::report::{ScaleCell, ScaleReport};
use crate::{progress, sys, ScalePlan, MODEL};
use anyhow::{bail, Context, Result};
use cocoon_attest::{EvidenceKind, Measurements};
use cocoon_chain::{Chain, LocalChain, ProxyEntry};
use cocoon_engine::test_engine::TestEngineConfig;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// PoW difficulty of the bench registry: links are set up once per cell, and PoW is measured
/// on its own in the hot-path benches, so the set-up of 64 worker links is kept short.
const POW_DIFFICULTY: u8 = 4;

pub async fn run(plan: &ScalePlan, shutdown: &CancellationToken) -> Result<ScaleReport> {
    let mut cells = Vec::new();
    for &workers in &plan.workers {
        for &streams in &plan.streams {
            if shutdown.is_cancelled() {
                bail!("interrupted");
            }
            progress(format_args!(
                "scale: {workers} worker(s), {streams} streams"
            ));
            cells.push(cell(plan, workers, streams, shutdown).await?);
        }
    }
    Ok(ScaleReport {
        chunks: plan.chunks,
        chunk_size: plan.chunk_size,
        delay_ms: plan.delay.as_millis() as u64,
        streams_per_connection: plan.streams_per_connection,
        cells,
    })
}

/// The proxy child; killed (and its directory removed) when dropped.
struct ProxyChild {
    child: Child,
    dir: PathBuf,
}

impl ProxyChild {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "proxy exited ({status}); log: {}",
                tail_of(&self.dir.join("proxy.log"))
            )),
            _ => None,
        }
    }
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("COCOON_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            crate::progress(format_args!("kept {}", self.dir.display()));
        }
    }
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or_default().to_string()
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Ports {
    client: u16,
    worker: u16,
    http: u16,
}

fn spawn_proxy(exe: &Path, model_id: &str) -> Result<(ProxyChild, Ports, PathBuf)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cocoon-bench-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let ports = Ports {
        client: free_port()?,
        worker: free_port()?,
        http: free_port()?,
    };
    let mut registry = cocoon_devnet::dev_registry(model_id, POW_DIFFICULTY);
    registry.proxies.push(ProxyEntry {
        name: "proxy-0".into(),
        client_endpoint: format!("127.0.0.1:{}", ports.client),
        worker_endpoint: format!("127.0.0.1:{}", ports.worker),
    });
    let registry_path = dir.join("registry.json");
    LocalChain::write_file(&registry_path, &registry)?;
    let config = dir.join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"proxy-0\"\nowner_address = \"bench-proxy-owner\"\nregistry = \"registry.json\"\n\
             client_listen = \"127.0.0.1:{}\"\nworker_listen = \"127.0.0.1:{}\"\n\
             http_listen = \"127.0.0.1:{}\"\nevidence = \"sim\"\n",
            ports.client, ports.worker, ports.http
        ),
    )?;
    let log = std::fs::File::create(dir.join("proxy.log"))?;
    let child = Command::new(exe)
        .arg("proxy")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start the proxy child {}", exe.display()))?;
    Ok((ProxyChild { child, dir }, ports, registry_path))
}

/// Enabled workers according to the proxy's `/jsonstats`.
async fn enabled_workers(http: &reqwest::Client, port: u16) -> Option<usize> {
    let stats: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/jsonstats"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        stats["workers"]
            .as_array()?
            .iter()
            .filter(|w| w["enabled"] == true)
            .count(),
    )
}

async fn cell(
    plan: &ScalePlan,
    workers: usize,
    streams: usize,
    shutdown: &CancellationToken,
) -> Result<ScaleCell> {
    let model_id = cocoon_devnet::dev_model_id(MODEL);
    let (mut proxy, ports, registry_path) = spawn_proxy(&plan.cocoon_bin, &model_id)?;
    let stop = shutdown.child_token();
    let _stop_on_return = stop.clone().drop_guard();
    let chain: Arc<dyn Chain> = LocalChain::open(&registry_path)?;
    let engine_config = TestEngineConfig {
        models: vec![MODEL.into()],
        chunks: plan.chunks,
        chunk_size: plan.chunk_size,
        chunk_delay: plan.delay,
    };
    // Room for every stream on any worker: the proxy's least-loaded choice spreads them anyway.
    let cap = u32::try_from(streams + 16).unwrap_or(u32::MAX);
    let mut running = Vec::new();
    for i in 0..workers {
        running.push(cocoon_worker::start(
            cocoon_worker::WorkerConfig {
                name: format!("bench-worker-{i}"),
                owner_address: format!("bench-worker-owner-{i}"),
                model_id: model_id.clone(),
                coefficient: 1000,
                max_active_requests: cap,
                proxies: vec![format!("127.0.0.1:{}", ports.worker)],
                weights: None,
                http_listen: None,
                admin_token: None,
                evidence: EvidenceKind::Sim,
                measurements: Measurements::for_label(cocoon_devnet::WORKER_IMAGE_LABEL),
                tdx_verifier: None,
                hardware: cocoon_worker::detect_hardware(),
                max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
                engine_probe_interval: Duration::from_secs(1),
                reconnect_interval: Duration::from_millis(200),
                timing: cocoon_net::LinkTiming::default(),
                engine: Arc::new(InProcessEngine::new(engine_config.clone())),
                token_counter: None,
                chain: chain.clone(),
            },
            stop.clone(),
        )?);
    }
    let client = cocoon_client::start(
        cocoon_client::ClientConfig {
            api_keys: Vec::new(),
            payments: None,
            name: "bench-client".into(),
            owner_address: "bench-client-owner".into(),
            http_listen: "127.0.0.1:0".parse()?,
            proxies: vec![format!("127.0.0.1:{}", ports.client)],
            max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
            tdx_verifier: None,
            reconnect_interval: Duration::from_millis(200),
            timing: cocoon_net::LinkTiming::default(),
            defaults: cocoon_client::RequestDefaults::default(),
            chain,
        },
        stop.clone(),
    )
    .await?;

    // Ready: the client has its proxy link and the proxy sees every worker enabled.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(why) = proxy.exited() {
            bail!(why);
        }
        let enabled = enabled_workers(&http, ports.http).await.unwrap_or(0);
        if client.ready_proxies() > 0 && enabled == workers {
            break;
        }
        if Instant::now() > ready_by {
            bail!(
                "network not ready after 60 s: {} proxy link(s), {enabled}/{workers} workers enabled",
                client.ready_proxies()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = proxy.pid();
    let idle_rss = sys::status_bytes(pid, "VmRSS").unwrap_or(0);
    let cpu_before = sys::cpu_seconds(pid).unwrap_or(0.0);
    let sampling = CancellationToken::new();
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            while !sampling.is_cancelled() {
                peak = peak.max(sys::status_bytes(pid, "VmRSS").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let url = format!("http://{}/v1/chat/completions", client.http_addr);
    let body = {
        let mut b: serde_json::Value = serde_json::from_slice(&chat_body(true, "scale"))?;
        b["timeout"] = serde_json::json!(3600);
        bytes::Bytes::from(b.to_string())
    };
    let result = open_streams(&url, body, streams, plan.streams_per_connection).await?;
    sampling.cancel();
    let cpu = sys::cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let hwm = sys::status_bytes(pid, "VmHWM").unwrap_or(0);
    let sampled_peak = sampler.await.unwrap_or(0);
    let mut first_error = result.first_error;
    if let Some(why) = proxy.exited() {
        first_error.get_or_insert(why);
    }
    let mut durations = result.durations;
    durations.sort_unstable();
    let wall = result.elapsed.as_secs_f64();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    drop(client);
    drop(running);
    Ok(ScaleCell {
        workers,
        streams,
        completed: result.completed,
        failed: result.failed,
        completion_rate: result.completed as f64 / streams.max(1) as f64,
        peak_open: result.peak_open,
        nominal_stream_s: plan.delay.as_secs_f64() * f64::from(plan.chunks),
        stream_p50_s: percentile(&durations, 50.0).as_secs_f64(),
        stream_max_s: durations.last().map_or(0.0, Duration::as_secs_f64),
        wall_s: wall,
        proxy_idle_rss_mib: mib(idle_rss),
        proxy_peak_rss_mib: mib(hwm.max(sampled_peak)),
        proxy_cpu_s: cpu,
        proxy_cpu_pct_of_core: if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 },
        first_error,
        error_kinds: result.error_kinds,
    })
}
