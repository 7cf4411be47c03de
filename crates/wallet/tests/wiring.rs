//! The exact shape `cocoon` wires the wallet in with: a `Wallet` variant flattening
//! `ChainArgs` beside the `WalletCommand` subcommand.

use clap::{Parser, Subcommand};
use cocoon_wallet::{ChainArgs, WalletCommand};

#[derive(Parser)]
#[command(name = "cocoon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Wallets and contracts on the devnet chain: balances, faucet, deposits, payouts, audit.
    Wallet {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(subcommand)]
        cmd: WalletCommand,
    },
}

#[test]
fn parses_as_a_cocoon_subcommand() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    let Command::Wallet { chain, cmd } =
        Cli::try_parse_from(["cocoon", "wallet", "--db", "c.db", "audit", "--json"])
            .unwrap()
            .command;
    assert_eq!(chain.db, Some("c.db".into()));
    assert!(cmd.json());
    let Command::Wallet { chain, cmd } = Cli::try_parse_from([
        "cocoon",
        "wallet",
        "proxy",
        "stake",
        "--proxy",
        "p",
        "--from",
        "o",
        "2ton",
        "--chain",
        "http://h:1",
    ])
    .unwrap()
    .command;
    assert_eq!(chain.chain.as_deref(), Some("http://h:1"));
    assert!(!cmd.json());
    let out = cocoon_wallet::exec(
        &ChainArgs::default(),
        &WalletCommand::Address {
            name: "alice".into(),
        },
    )
    .unwrap();
    assert_eq!(out.trim().len(), 64);
}
