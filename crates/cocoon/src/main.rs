//! `cocoon` — one binary for every role of the Cocoon network.

mod attest_cmd;
mod chain_cmd;
mod client_cmd;
mod config;
mod dev;
mod engine_bench;
mod estimate;
mod model_cmd;
mod operator;
mod root_cmd;
mod ton_config;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "cocoon",
    version,
    about = "Cocoon: confidential, decentralized AI inference with an OpenAI-compatible API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a whole local network (chain, proxy, workers, client, engine) in one process.
    Dev(dev::DevArgs),
    /// Run an inference engine on its own.
    Engine {
        #[command(subcommand)]
        kind: EngineKind,
    },
    /// Run a proxy from a TOML config file, or operate one: `cocoon proxy status|withdraw`.
    Proxy(ProxyArgs),
    /// Run a worker from a TOML config file, or operate one: `cocoon worker
    /// init|status|enable|disable|set-coefficient|payout`.
    Worker(WorkerArgs),
    /// Run a client (the OpenAI-compatible API for apps) from a TOML config file, or
    /// `cocoon client estimate|status|top-up|withdraw|close`.
    Client(ClientArgs),
    /// Benchmark relay overhead and scale on one proxy; prints a table, JSON or Markdown.
    Bench(Box<cocoon_bench::BenchArgs>),
    /// Produce and verify attestation evidence (quotes) by hand.
    Attest {
        #[command(subcommand)]
        cmd: attest_cmd::AttestCommand,
    },
    /// Wallets and contracts on the chain: balances, faucet, deposits, payouts, audit.
    Wallet {
        #[command(flatten)]
        chain: cocoon_wallet::ChainArgs,
        #[command(subcommand)]
        cmd: cocoon_wallet::WalletCommand,
    },
    /// The durable devnet chain (wallets, contracts, history): `cocoon chain serve`.
    Chain {
        #[command(subcommand)]
        cmd: chain_cmd::ChainCommand,
    },
    /// The default model and model ids: `cocoon model fetch`, `cocoon model id FILE.gguf`.
    Model {
        #[command(subcommand)]
        cmd: model_cmd::ModelCommand,
    },
    /// Manage the local registry file that separate processes share.
    Registry {
        #[command(subcommand)]
        action: RegistryAction,
    },
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ClientArgs {
    /// Path to the client's TOML config (see README for the keys).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<ClientCmd>,
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Expected daily cost of a workload at current prices and worker coefficients, and
    /// the stake the client needs.
    Estimate(estimate::EstimateArgs),
    #[command(flatten)]
    Operate(client_cmd::ClientOpCmd),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct WorkerArgs {
    /// Path to the worker's TOML config: runs the worker (see README for the keys;
    /// `cocoon worker init` writes one).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<operator::WorkerCmd>,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ProxyArgs {
    /// Path to the proxy's TOML config: runs the proxy (see README for the keys).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<operator::ProxyCmd>,
}

#[derive(Subcommand)]
enum EngineKind {
    /// The deterministic test engine: an OpenAI-compatible server whose output is a pure
    /// function of the request.
    Test(dev::TestEngineArgs),
    /// Measure the built-in llama.cpp engine on this machine: load time, prompt and decode
    /// tokens/s, and aggregate tokens/s with several requests at once.
    Bench(engine_bench::EngineBenchArgs),
}

#[derive(Subcommand)]
enum RegistryAction {
    /// Write a devnet registry: sim evidence allowed, devnet images and the given models allowlisted.
    Init {
        /// Where to write the registry JSON.
        #[arg(long)]
        out: PathBuf,
        /// Full model ids to allow (`name@revision:weights_hash`); repeatable.
        #[arg(long = "model-id", required = true)]
        model_ids: Vec<String>,
        /// Proof-of-work difficulty proxies demand.
        #[arg(long, default_value_t = cocoon_attest::pow::DEFAULT_DIFFICULTY)]
        pow_difficulty: u8,
        /// Proxies as NAME=CLIENT_ENDPOINT,WORKER_ENDPOINT; repeatable.
        #[arg(long = "proxy")]
        proxies: Vec<String>,
    },
}

fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

/// Cancels `token` on Ctrl-C or SIGTERM.
fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        token.cancel();
    });
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing();
    cocoon_attest::ensure_crypto_provider();
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    match cli.command {
        Command::Dev(args) => dev::run(args, shutdown).await,
        Command::Engine {
            kind: EngineKind::Test(args),
        } => dev::run_test_engine(args, shutdown).await,
        Command::Engine {
            kind: EngineKind::Bench(args),
        } => engine_bench::run(args).await,
        Command::Proxy(ProxyArgs { cmd: Some(cmd), .. }) => operator::proxy(cmd).await,
        Command::Proxy(ProxyArgs {
            config: Some(path), ..
        }) => Ok(cocoon_proxy::run(config::proxy(&path)?, shutdown).await?),
        Command::Proxy(_) => anyhow::bail!("give --config FILE (or a subcommand: status, withdraw)"),
        Command::Worker(WorkerArgs { cmd: Some(cmd), .. }) => operator::worker(cmd).await,
        Command::Worker(WorkerArgs {
            config: Some(path), ..
        }) => run_workers(path, shutdown).await,
        Command::Worker(_) => anyhow::bail!(
            "give --config FILE (or a subcommand: init, status, enable, disable, set-coefficient, payout)"
        ),
        Command::Client(ClientArgs {
            cmd: Some(ClientCmd::Estimate(args)),
            ..
        }) => {
            print!("{}", estimate::run(&args).await?);
            Ok(())
        }
        Command::Client(ClientArgs {
            config: Some(path), ..
        }) => Ok(cocoon_client::run(config::client(&path)?, shutdown).await?),
        Command::Client(ClientArgs {
            cmd: Some(ClientCmd::Operate(cmd)),
            ..
        }) => client_cmd::run(cmd).await,
        Command::Client(_) => anyhow::bail!(
            "give --config FILE (or a subcommand: estimate, status, top-up, withdraw, close)"
        ),
        Command::Bench(args) => cocoon_bench::run(*args, shutdown).await,
        Command::Attest { cmd } => attest_cmd::run(cmd),
        Command::Model { cmd } => tokio::task::spawn_blocking(move || model_cmd::run(cmd)).await?,
        Command::Chain { cmd } => chain_cmd::run(cmd, shutdown).await,
        Command::Wallet { chain, cmd } => {
            let out =
                tokio::task::spawn_blocking(move || cocoon_wallet::exec(&chain, &cmd)).await??;
            print!("{out}");
            Ok(())
        }
        Command::Registry {
            action:
                RegistryAction::Init {
                    out,
                    model_ids,
                    pow_difficulty,
                    proxies,
                },
        } => registry_init(out, model_ids, pow_difficulty, proxies),
    }
}

/// Runs every model of a worker file in this process (one worker, and proxy link, per
/// model); the first to fail stops them all.
async fn run_workers(path: PathBuf, shutdown: CancellationToken) -> Result<()> {
    // Loading a built-in engine's model blocks for a moment.
    let configs = tokio::task::spawn_blocking(move || config::workers(&path)).await??;
    let mut running = tokio::task::JoinSet::new();
    for config in configs {
        let stop = shutdown.clone();
        running.spawn(async move {
            let model = config.model_id.clone();
            cocoon_worker::run(config, stop)
                .await
                .with_context(|| format!("worker for {model}"))
        });
    }
    while let Some(done) = running.join_next().await {
        if let Err(e) = done? {
            shutdown.cancel();
            return Err(e);
        }
    }
    Ok(())
}

fn registry_init(
    out: PathBuf,
    model_ids: Vec<String>,
    pow_difficulty: u8,
    proxies: Vec<String>,
) -> Result<()> {
    let mut registry = cocoon_devnet::dev_registry(&model_ids[0], pow_difficulty);
    for id in &model_ids[1..] {
        registry.model_hashes.insert(cocoon_chain::model_hash(id));
    }
    for p in proxies {
        let (name, endpoints) = p
            .split_once('=')
            .context("--proxy must be NAME=CLIENT_ENDPOINT,WORKER_ENDPOINT")?;
        let (client, worker) = endpoints
            .split_once(',')
            .context("--proxy must be NAME=CLIENT_ENDPOINT,WORKER_ENDPOINT")?;
        registry.proxies.push(cocoon_chain::ProxyEntry {
            name: name.into(),
            client_endpoint: client.into(),
            worker_endpoint: worker.into(),
        });
    }
    cocoon_chain::LocalChain::write_file(&out, &registry)?;
    println!(
        "wrote registry {} (version {}, {} model(s), {} proxies)",
        out.display(),
        registry.version,
        registry.model_hashes.len(),
        registry.proxies.len()
    );
    Ok(())
}
