//! `cocoon chain root …`: governing a TON root registry from its owner's wallet — the models
//! and TEE images the network allows and the proxies it lists — and showing what it holds.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cocoon_ton::api::{AccountStatus, ApiConfig, TonApi};
use cocoon_ton::messages::{self as m, ImageRole, ProxyEntry};
use cocoon_ton::state::{parse_root, RootState};
use cocoon_ton::wallet::{NodeWallet, Outgoing};
use cocoon_ton::TonAddress;
use std::path::PathBuf;
use std::time::Duration;

/// Where the TON API is and which wallet signs.
#[derive(clap::Args)]
pub struct WalletArgs {
    /// TON HTTP API (toncenter v2 compatible) base URL.
    #[arg(long, default_value = "https://testnet.toncenter.com/api/v2")]
    pub api_url: String,
    /// API key (sent as X-API-Key; raises the rate limit from 1 to 10 requests/s).
    #[arg(long, env = "TON_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// File with the wallet's Ed25519 seed: 64 hex characters. The wallet (standard v4r2
    /// or v5r1 of that key) signs and pays; fund it first. Not needed to only read.
    #[arg(long)]
    pub wallet_seed_file: Option<PathBuf>,
    /// The wallet contract version of that key.
    #[arg(long, default_value = "v4r2", value_parser = ["v4r2", "v5r1"])]
    pub wallet_version: String,
    /// Requests per second to allow the API (default: 10 with a key, 1 without, as public
    /// toncenter endpoints allow).
    #[arg(long)]
    pub requests_per_second: Option<f64>,
}

impl WalletArgs {
    pub fn wallet(&self) -> Result<NodeWallet> {
        let Some(path) = &self.wallet_seed_file else {
            bail!("--wallet-seed-file is required: the wallet signs and pays");
        };
        let seed = crate::ton_config::read_seed(path)?;
        let version = crate::ton_config::wallet_version(&self.wallet_version)?;
        Ok(NodeWallet::from_seed(&seed, version)?)
    }

    pub fn api(&self) -> Result<TonApi> {
        let mut config = ApiConfig::new(&self.api_url, self.api_key.clone());
        if let Some(rps) = self.requests_per_second.filter(|r| *r > 0.0) {
            config.requests_per_second = rps;
        }
        Ok(TonApi::new(config)?)
    }
}

#[derive(clap::Args)]
pub struct RootArgs {
    #[command(flatten)]
    wallet: WalletArgs,
    /// The root registry contract (as `deploy-root` printed it).
    #[arg(long)]
    root: String,
    #[command(subcommand)]
    action: RootAction,
}

#[derive(Subcommand)]
pub enum RootAction {
    /// Print the root's version, prices, allowed models and images, and proxies.
    Show,
    /// Allow a model by its full id `name@revision:weights_hash`.
    AddModel { model_id: String },
    /// Disallow a model.
    DelModel { model_id: String },
    /// Allow a TEE image hash (64 hex characters) for a role.
    AddImage {
        #[arg(value_parser = ["proxy", "worker"])]
        role: String,
        hash: String,
    },
    /// Disallow a TEE image hash.
    DelImage {
        #[arg(value_parser = ["proxy", "worker"])]
        role: String,
        hash: String,
    },
    /// List a proxy: its contract and the `host:port` clients and workers dial.
    RegisterProxy {
        proxy: String,
        client_endpoint: String,
        worker_endpoint: String,
    },
    /// Remove a listed proxy by its id (`show` prints the ids).
    UnregisterProxy { id: u32 },
}

/// Gas sent with an administrative message; the root returns what it does not use.
const ADMIN_VALUE: u64 = 100_000_000;

async fn read_root(api: &TonApi, root: &TonAddress) -> Result<RootState> {
    let account = api.account(root).await?;
    if account.status != AccountStatus::Active {
        bail!("no root contract at {root} (deploy one with `cocoon chain deploy-root`)");
    }
    let data = m::from_boc(&account.data)?;
    parse_root(&data).with_context(|| format!("the contract at {root} is not a Cocoon root"))
}

fn hash32(text: &str) -> Result<[u8; 32]> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{text:?} is not 64 hex characters"))
}

fn role(text: &str) -> ImageRole {
    if text == "worker" {
        ImageRole::Worker
    } else {
        ImageRole::Proxy
    }
}

fn show(root: &TonAddress, s: &RootState) {
    println!("root {} version {}", root.to_base64_url(), s.version);
    println!("owner {}", s.owner.to_base64_url());
    let p = &s.params;
    println!(
        "price_per_token {} worker_fee_per_token {} min_client_stake {} min_proxy_stake {}",
        p.price_per_token, p.worker_fee_per_token, p.min_client_stake, p.min_proxy_stake
    );
    for (name, set) in [
        ("model", &s.models),
        ("proxy image", &s.proxy_images),
        ("worker image", &s.worker_images),
    ] {
        for h in set {
            println!("{name} {}", hex::encode(h));
        }
    }
    for (id, e) in &s.proxies {
        println!(
            "proxy {id}: {} clients {} workers {}",
            e.proxy.to_base64_url(),
            e.client_endpoint,
            e.worker_endpoint
        );
    }
}

pub async fn run(args: RootArgs) -> Result<()> {
    let api = args.wallet.api()?;
    let root = cocoon_ton::parse_address(&args.root)?;
    let before = read_root(&api, &root).await?;
    let q = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = match &args.action {
        RootAction::Show => {
            show(&root, &before);
            return Ok(());
        }
        RootAction::AddModel { model_id } => {
            m::root_add_model(q, &cocoon_chain::model_hash(model_id))?
        }
        RootAction::DelModel { model_id } => {
            m::root_del_model(q, &cocoon_chain::model_hash(model_id))?
        }
        RootAction::AddImage { role: r, hash } => m::root_add_image(q, role(r), &hash32(hash)?)?,
        RootAction::DelImage { role: r, hash } => m::root_del_image(q, role(r), &hash32(hash)?)?,
        RootAction::RegisterProxy {
            proxy,
            client_endpoint,
            worker_endpoint,
        } => m::root_register_proxy(
            q,
            &ProxyEntry {
                proxy: cocoon_ton::parse_address(proxy)?,
                client_endpoint: client_endpoint.clone(),
                worker_endpoint: worker_endpoint.clone(),
            },
        )?,
        RootAction::UnregisterProxy { id } => m::root_unregister_proxy(q, *id)?,
    };
    let wallet = args.wallet.wallet()?;
    if before.owner != *wallet.address() {
        bail!(
            "wallet {} is not the root's owner {}; the root would refuse the change",
            wallet.address().to_base64_url(),
            before.owner.to_base64_url()
        );
    }
    let message = Outgoing {
        to: root.clone(),
        value: ADMIN_VALUE,
        bounce: true,
        body,
        state_init: None,
    };
    cocoon_ton::deploy::send_and_wait(&api, &wallet, message, Duration::from_secs(90)).await?;
    // The root bumps its version on every change it accepts; an unchanged version means it
    // refused (already in the set, not found…).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let after = read_root(&api, &root).await?;
        if after.version != before.version {
            println!("done: root version {} → {}", before.version, after.version);
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the root did not change (still version {}): it refused the message — the hash \
                 may already be in the set, or not in it, or the proxy id unknown",
                after.version
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
