//! `cocoon chain serve`: the durable devnet chain (registry, wallets, contracts, history in
//! one SQLite file) served over HTTP/JSON, so processes on several hosts share one devnet
//! through `cocoon_chain::RemoteChain`. Routes: see `cocoon_chain::http`.

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
}

pub async fn run(cmd: ChainCommand, shutdown: CancellationToken) -> Result<()> {
    match cmd {
        ChainCommand::Serve {
            db,
            listen,
            genesis,
        } => serve(db, listen, genesis, shutdown).await,
    }
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
