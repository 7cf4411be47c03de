//! `cocoon client status|top-up|withdraw|close`: a client operator's view and money actions.
//! `status` reads the client's `/jsonstats`; the money actions are the same as
//! `cocoon wallet client …` (they talk to the chain, not to the client process).

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::Value;
use std::fmt::Write;

use crate::operator::{get_stats, NodeUrl, StatusArgs};

/// The client API's default address (`cocoon dev`, `http_listen` in a client config).
pub const DEFAULT_CLIENT_URL: &str = "http://127.0.0.1:10000";

#[derive(Args)]
pub struct ClientUrl {
    /// The client's HTTP address (`http_listen` in its config).
    #[arg(long, default_value = DEFAULT_CLIENT_URL)]
    url: String,
}

impl NodeUrl for ClientUrl {
    fn url(&self) -> &str {
        &self.url
    }
    const ROLE: &'static str = "client";
}

#[derive(Subcommand)]
pub enum ClientOpCmd {
    /// A running client at a glance: requests, spend, and per proxy the client contract's
    /// balance, stake, charged tokens and state.
    Status(StatusArgs<ClientUrl>),
    /// Add to the client's deposit at a proxy (= `cocoon wallet client top-up`).
    TopUp {
        #[command(flatten)]
        chain: cocoon_wallet::ChainArgs,
        #[command(flatten)]
        at: cocoon_wallet::ContractAt,
        /// nanoTON, or TON with a suffix (`1.5ton`).
        amount: cocoon_wallet::Amount,
        #[command(flatten)]
        format: cocoon_wallet::Format,
    },
    /// Return the balance above the stake to the owner (= `cocoon wallet client withdraw`).
    Withdraw {
        #[command(flatten)]
        chain: cocoon_wallet::ChainArgs,
        #[command(flatten)]
        at: cocoon_wallet::ContractAt,
        #[command(flatten)]
        format: cocoon_wallet::Format,
    },
    /// Start closing the client contract (refunds above the stake now); once unlocked, run
    /// it again to force the refund of the rest (= `cocoon wallet client close`).
    Close {
        #[command(flatten)]
        chain: cocoon_wallet::ChainArgs,
        #[command(flatten)]
        at: cocoon_wallet::ContractAt,
        #[command(flatten)]
        format: cocoon_wallet::Format,
    },
}

pub async fn run(cmd: ClientOpCmd) -> Result<()> {
    use cocoon_wallet::{ClientCommand, WalletCommand};
    let (chain, wallet_cmd) = match cmd {
        ClientOpCmd::Status(args) => {
            let stats = get_stats(&args.node).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", summary(&stats));
            }
            return Ok(());
        }
        ClientOpCmd::TopUp {
            chain,
            at,
            amount,
            format,
        } => (chain, ClientCommand::TopUp { at, amount, format }),
        ClientOpCmd::Withdraw { chain, at, format } => {
            (chain, ClientCommand::Withdraw { at, format })
        }
        ClientOpCmd::Close { chain, at, format } => (chain, ClientCommand::Close { at, format }),
    };
    let cmd = WalletCommand::Client(wallet_cmd);
    let out = tokio::task::spawn_blocking(move || cocoon_wallet::exec(&chain, &cmd)).await??;
    print!("{out}");
    Ok(())
}

fn ton(nano: &Value) -> String {
    match nano.as_u64() {
        Some(n) => format!("{:.6} TON", n as f64 / 1e9),
        None => "–".into(),
    }
}

/// The human summary of a client's `/jsonstats`.
pub fn summary(s: &Value) -> String {
    let mut o = String::new();
    let st = &s["stats"];
    let _ = writeln!(o, "client       {}", s["name"].as_str().unwrap_or("?"));
    let _ = writeln!(
        o,
        "requests     {} ({} ok, {} failed)",
        st["requests"], st["succeeded"], st["failed"]
    );
    let _ = writeln!(o, "spent        {}", ton(&st["total_cost"]));
    let _ = writeln!(
        o,
        "top-ups      {}   self-submitted charges {}   proxy refusals {}",
        st["top_ups"], st["self_charges"], st["proxy_refusals"]
    );
    let payments = s["payments"].as_array().cloned().unwrap_or_default();
    if payments.is_empty() {
        let _ = writeln!(
            o,
            "payments     off (the proxies serve this client for free)"
        );
    }
    for p in payments {
        let chain = &p["chain"];
        let _ = writeln!(
            o,
            "proxy {}  contract {}…  {}  balance {}  stake {}  charged {} tokens",
            p["endpoint"].as_str().unwrap_or("?"),
            p["client_contract"]
                .as_str()
                .unwrap_or("")
                .get(..12)
                .unwrap_or("?"),
            chain["state"].as_str().unwrap_or("not deployed"),
            ton(&chain["balance"]),
            ton(&chain["stake"]),
            chain["tokens_charged"],
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_a_client() {
        let s = serde_json::json!({
            "name": "client-0",
            "stats": {"requests": 3, "succeeded": 3, "failed": 0, "total_cost": 2160,
                      "top_ups": 0, "self_charges": 0, "proxy_refusals": 0},
            "payments": [{"endpoint": "127.0.0.1:11002", "client_contract": "3a59c46d81917bfb9ccaaa",
                          "chain": {"balance": 9_999_997_840u64, "stake": 1_000_000_000u64,
                                    "tokens_charged": 108, "state": "open"}}],
        });
        let text = summary(&s);
        assert!(text.contains("3 ok"), "{text}");
        assert!(text.contains("0.000002 TON"), "{text}");
        assert!(
            text.contains("balance 9.999998 TON") && text.contains("open"),
            "{text}"
        );
        assert!(text.contains("3a59c46d8191…"), "{text}");
    }
}
