//! `cocoon chain serve`: the durable devnet chain (registry, wallets, contracts, history in
//! one SQLite file) served over HTTP/JSON, so processes on several hosts share one devnet
//! through `cocoon_chain::RemoteChain`. Routes: see `cocoon_chain::http`.
//!
//! `cocoon chain deploy-root`: deploys the TON root registry contract (`contracts/`) to a real
//! network through a TON HTTP API.

use anyhow::{Context, Result};
use clap::Subcommand;
use cocoon_chain::{Chain, Clock, DbChain, LocalChain, Registry};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Serve a chain database over HTTP/JSON (created on first use).
    Serve {
        /// The chain database file (SQLite); created with the genesis registry if missing.
        #[arg(long)]
        db: PathBuf,
        /// Address to listen on (port 0 picks a free one; the bound address is printed).
        #[arg(long, default_value = "127.0.0.1:11500")]
        listen: String,
        /// Registry JSON (as written by `cocoon registry init`) for a new database; ignored
        /// when the database exists. Default: an empty registry with default prices.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Deploy the root registry contract to a TON network (testnet by default) from a
    /// wallet you control, and print its address. Safe to repeat: an active root with the
    /// same owner, params and code is reported, not deployed again.
    DeployRoot(DeployRoot),
    /// Govern a TON root registry from its owner's wallet: allow models and TEE images,
    /// list proxies; or show what it holds.
    Root(crate::root_cmd::RootArgs),
}

#[derive(clap::Args)]
pub struct DeployRoot {
    #[command(flatten)]
    wallet: crate::root_cmd::WalletArgs,
    /// The root's owner (raw `0:…` or user-friendly form); default: the deployer wallet.
    #[arg(long)]
    owner: Option<String>,
    /// Registry JSON (`cocoon registry init`) whose prices, stakes and delays the root
    /// starts with; default: the built-in defaults.
    #[arg(long)]
    params_from: Option<PathBuf>,
    /// nanoTON sent with the deploy (the root keeps what gas does not use).
    #[arg(long, default_value_t = 500_000_000)]
    value: u64,
    /// Print the root's address and stop, sending nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(cmd: ChainCommand, shutdown: CancellationToken) -> Result<()> {
    match cmd {
        ChainCommand::Serve {
            db,
            listen,
            genesis,
        } => serve(db, listen, genesis, shutdown).await,
        ChainCommand::DeployRoot(args) => deploy_root(args).await,
        ChainCommand::Root(args) => crate::root_cmd::run(args).await,
    }
}

async fn deploy_root(args: DeployRoot) -> Result<()> {
    let wallet = args.wallet.wallet()?;
    let owner = match &args.owner {
        Some(o) => cocoon_ton::parse_address(o)?,
        None => wallet.address().clone(),
    };
    let params = match &args.params_from {
        Some(path) => LocalChain::open(path)?.registry().params.clone(),
        None => Default::default(),
    };
    let params = cocoon_ton::messages::Params::try_from(&params)?;
    let codes = cocoon_ton::deploy::Codes::embedded()?;
    let (_, address) = cocoon_ton::deploy::root_state_init(&owner, &params, &codes)?;
    // User-friendly forms for this network: contracts bounceable, the wallet (which may not
    // be deployed yet, so funds sent to it must not bounce) non-bounceable.
    let testnet = args.wallet.api_url.contains("testnet");
    let friendly =
        |a: &cocoon_ton::TonAddress, non_bounceable| a.to_base64_url_flags(non_bounceable, testnet);
    println!(
        "root address: {} (raw {})",
        friendly(&address, false),
        address.to_hex()
    );
    println!("owner: {}", friendly(&owner, false));
    println!("deployer wallet: {}", friendly(wallet.address(), true));
    if args.dry_run {
        println!("dry run: nothing sent; fund the deployer wallet and run again without --dry-run");
        return Ok(());
    }
    let api = args.wallet.api()?;
    let done = cocoon_ton::deploy::deploy_root(
        &api,
        &wallet,
        &owner,
        &params,
        args.value,
        std::time::Duration::from_secs(90),
        |line| eprintln!("{line}"),
    )
    .await?;
    match done {
        cocoon_ton::deploy::Deployed::Sent { address, .. } => {
            println!("root deployed at {}", friendly(&address, false))
        }
        cocoon_ton::deploy::Deployed::AlreadyActive { address } => {
            println!(
                "root already active at {}; nothing sent",
                friendly(&address, false)
            )
        }
    }
    Ok(())
}

async fn serve(
    db: PathBuf,
    listen: String,
    genesis: Option<PathBuf>,
    shutdown: CancellationToken,
) -> Result<()> {
    let genesis = match genesis {
        // The registry file format is LocalChain's; reuse its reader and validation.
        Some(path) => (*LocalChain::open(&path)?.registry()).clone(),
        None => Registry::default(),
    };
    let path = db.clone();
    // Opening may run SQLite recovery after a crash: keep it off the reactor.
    let chain = tokio::task::spawn_blocking(move || DbChain::open(&path, genesis, Clock::wall()))
        .await
        .context("opening the chain database")??;
    let tip = chain.tip()?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // On stdout, flushed: scripts and tests read the bound address from this line.
    println!("chain {} serving on http://{addr}", db.display());
    std::io::stdout().flush().ok();
    tracing::info!(seq = tip.seq, block = tip.block, "chain state loaded");
    let chain: Arc<dyn Chain> = chain;
    cocoon_chain::http::serve(chain, listener, async move { shutdown.cancelled().await })
        .await
        .context("chain server failed")
}
