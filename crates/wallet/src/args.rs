//! The command line: which chain to talk to, and the wallet commands.

use crate::amount::Amount;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use cocoon_chain::{Chain, Clock, DbChain, Registry, RemoteChain};
use std::path::PathBuf;
use std::sync::Arc;

/// Where `cocoon chain serve` listens by default.
pub const DEFAULT_CHAIN_URL: &str = "http://127.0.0.1:11500";

/// The chain to use: a `cocoon chain serve` endpoint (default) or a database file.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainArgs {
    /// URL of a `cocoon chain serve` endpoint [default: http://127.0.0.1:11500].
    #[arg(long, value_name = "URL", conflicts_with = "db", global = true)]
    pub chain: Option<String>,
    /// Open a chain database file directly instead (only one no server holds: a running
    /// `cocoon chain serve` locks its file; use --chain then).
    #[arg(long, value_name = "FILE", global = true)]
    pub db: Option<PathBuf>,
}

impl ChainArgs {
    /// Connects to the chain server, or opens the database.
    pub fn open(&self) -> Result<Arc<dyn Chain>> {
        if let Some(path) = &self.db {
            if !path.is_file() {
                bail!(
                    "no chain database at {} (create one with `cocoon chain serve --db {}`)",
                    path.display(),
                    path.display()
                );
            }
            // An existing database ignores the genesis registry.
            let chain = DbChain::open(path, Registry::default(), Clock::wall()).map_err(|e| {
                let text = e.to_string();
                if text.contains("locked") || text.contains("busy") {
                    anyhow::anyhow!(
                        "chain database {} is in use by another process (a running \
                         `cocoon chain serve`?): talk to that server with --chain URL",
                        path.display()
                    )
                } else {
                    anyhow::anyhow!("cannot open chain database {}: {text}", path.display())
                }
            })?;
            return Ok(chain);
        }
        let url = self.chain.as_deref().unwrap_or(DEFAULT_CHAIN_URL);
        let chain = RemoteChain::connect(url).with_context(|| {
            format!(
                "cannot reach the chain at {url} (start one with `cocoon chain serve --db FILE`, \
                 or pick it with --chain URL / --db FILE)"
            )
        })?;
        Ok(chain)
    }
}

/// Print JSON instead of text.
#[derive(Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A client or worker contract: the one of `--owner` at `--proxy`.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct ContractAt {
    /// The owner wallet (64 hex digits or a devnet wallet name); it sends the op.
    #[arg(long)]
    pub owner: String,
    /// The proxy contract (its address, or the wallet owning exactly one).
    #[arg(long)]
    pub proxy: String,
}

/// Wallets and contracts on the chain. Amounts are nanoTON (`1500000000`) or TON (`1.5ton`).
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum WalletCommand {
    /// Print the address of a devnet wallet name.
    Address { name: String },
    /// A wallet's balance and every contract it owns, or one contract given its address.
    Show {
        /// Address (64 hex digits) or devnet wallet name.
        who: String,
        #[command(flatten)]
        format: Format,
    },
    /// Mint new coins to a wallet (devnet chains only).
    Faucet {
        to: String,
        amount: Amount,
        #[command(flatten)]
        format: Format,
    },
    /// Move coins from one wallet to another.
    Transfer {
        from: String,
        to: String,
        amount: Amount,
        #[command(flatten)]
        format: Format,
    },
    /// Every wallet and contract, the totals and the accounting invariants.
    Balances {
        /// Wallet names to show beside their addresses (repeatable; devnet names are known).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Where the money went, per proxy, from the whole history; checks every identity.
    Audit {
        /// Fail (exit status 1) when anything does not add up.
        #[arg(long)]
        check: bool,
        /// Wallet names to show beside their addresses (repeatable).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Client contracts: deposit, top up, withdraw, close.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Worker contracts: deploy, payouts.
    #[command(subcommand)]
    Worker(WorkerCommand),
    /// Proxy contracts: stake, commission, close.
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Move the chain clock forward (devnet: to pass close delays).
    Advance {
        secs: u64,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// Deploy the owner's client contract at a proxy with a first deposit.
    Deploy {
        #[command(flatten)]
        at: ContractAt,
        deposit: Amount,
        #[command(flatten)]
        format: Format,
    },
    /// Add to the client's deposit (from the owner's wallet).
    TopUp {
        #[command(flatten)]
        at: ContractAt,
        amount: Amount,
        #[command(flatten)]
        format: Format,
    },
    /// Return the balance above the stake to the owner.
    Withdraw {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
    /// Start closing (refunds above the stake now); once unlocked, a second call forces
    /// the refund of the rest.
    Close {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
    /// Raise the stake to AMOUNT (the new total; it never goes down).
    Stake {
        #[command(flatten)]
        at: ContractAt,
        amount: Amount,
        #[command(flatten)]
        format: Format,
    },
    /// Submit a proxy-signed client voucher (charge, or grant refund).
    Charge {
        /// The signed voucher as JSON, or @FILE.
        #[arg(long)]
        voucher: String,
        #[command(flatten)]
        format: Format,
    },
    /// The client contract's state.
    Show {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum WorkerCommand {
    /// Deploy the owner's worker contract at a proxy.
    Deploy {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
    /// Submit a proxy-signed worker voucher (payout, or last payout); the worker contract
    /// is the one the voucher names.
    Payout {
        /// The signed voucher as JSON, or @FILE.
        #[arg(long)]
        voucher: String,
        #[command(flatten)]
        format: Format,
    },
    /// The worker contract's state.
    Show {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum ProxyCommand {
    /// Pay the earned commission to the owner.
    Withdraw {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
    /// Start closing the proxy contract (no new clients or workers).
    Close {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
    /// Finish closing once unlocked and every client and worker is closed: pays the stake
    /// and the rest to the owner.
    CompleteClose {
        #[command(flatten)]
        at: ContractAt,
        #[command(flatten)]
        format: Format,
    },
    /// Add stake from a wallet.
    Stake {
        #[arg(long)]
        proxy: String,
        /// The paying wallet.
        #[arg(long)]
        from: String,
        amount: Amount,
        #[command(flatten)]
        format: Format,
    },
    /// The proxy contract's state.
    Show {
        #[arg(long)]
        proxy: String,
        #[command(flatten)]
        format: Format,
    },
}

impl WalletCommand {
    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        use ClientCommand as C;
        use ProxyCommand as P;
        use WorkerCommand as W;
        match self {
            WalletCommand::Address { .. } => false,
            WalletCommand::Show { format, .. }
            | WalletCommand::Faucet { format, .. }
            | WalletCommand::Transfer { format, .. }
            | WalletCommand::Balances { format, .. }
            | WalletCommand::Audit { format, .. }
            | WalletCommand::Advance { format, .. } => format.json,
            WalletCommand::Client(
                C::Deploy { format, .. }
                | C::TopUp { format, .. }
                | C::Withdraw { format, .. }
                | C::Close { format, .. }
                | C::Stake { format, .. }
                | C::Charge { format, .. }
                | C::Show { format, .. },
            ) => format.json,
            WalletCommand::Worker(
                W::Deploy { format, .. } | W::Payout { format, .. } | W::Show { format, .. },
            ) => format.json,
            WalletCommand::Proxy(
                P::Withdraw { format, .. }
                | P::Close { format, .. }
                | P::CompleteClose { format, .. }
                | P::Stake { format, .. }
                | P::Show { format, .. },
            ) => format.json,
        }
    }
}
