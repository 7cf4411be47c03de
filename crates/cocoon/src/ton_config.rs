//! `[ton]` in a role's config: run the role on a real TON network (testnet or mainnet)
//! through a TON HTTP API, sending from the node's own wallet.

use anyhow::{bail, Context, Result};
use cocoon_chain::{Chain, LocalChain};
use cocoon_ton::chain::{TonChain, TonChainConfig};
use cocoon_ton::wallet::{NodeWallet, WalletVersion};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TonFile {
    /// TON HTTP API (toncenter v2 compatible) base URL, e.g.
    /// https://testnet.toncenter.com/api/v2.
    pub api_url: String,
    /// Environment variable holding the API key (keys never go in config files).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// The root registry contract (`cocoon chain deploy-root` prints it).
    pub root: String,
    /// File with this node's wallet seed (64 hex characters), relative to the config file.
    /// The wallet pays gas and deposits; `owner_address` must be this wallet.
    pub wallet_seed_file: PathBuf,
    /// `v4r2` (default) or `v5r1`.
    #[serde(default = "default_version")]
    pub wallet_version: String,
    /// Registry JSON holding the attestation policy the root does not (allow_sim,
    /// pow_difficulty, MRTD/RTMR allowlists, pinned roots, TCB statuses); its prices, lists
    /// and proxies are ignored (the root's count). Default: real TDX evidence only.
    pub policy: Option<PathBuf>,
}

fn default_key_env() -> String {
    "TON_API_KEY".into()
}

fn default_version() -> String {
    "v4r2".into()
}

/// Reads a wallet seed file: 64 hex characters.
pub fn read_seed(path: &Path) -> Result<[u8; 32]> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| {
            format!(
                "{} must hold a 32-byte seed as 64 hex characters",
                path.display()
            )
        })
}

pub fn wallet_version(s: &str) -> Result<WalletVersion> {
    match s {
        "v4r2" => Ok(WalletVersion::V4R2),
        "v5r1" => Ok(WalletVersion::V5R1),
        other => bail!("wallet_version {other:?}: use v4r2 or v5r1"),
    }
}

/// The node's wallet of `[ton]`, checked to be the `owner` the config names: its seed, version
/// and account id (hex, as the services take owners).
fn node_wallet(
    config_path: &Path,
    t: &TonFile,
    resolve: &impl Fn(&Path) -> PathBuf,
    owner: &str,
) -> Result<([u8; 32], WalletVersion, String)> {
    let seed = read_seed(&resolve(&t.wallet_seed_file))?;
    let version = wallet_version(&t.wallet_version)?;
    let wallet = NodeWallet::from_seed(&seed, version)?;
    let wallet_hex = hex::encode(wallet.address().hash_part.as_slice());
    let named = cocoon_ton::parse_address(owner)
        .map(|a| hex::encode(a.hash_part.as_slice()))
        .unwrap_or_else(|_| owner.to_string());
    if named != wallet_hex {
        bail!(
            "{}: owner_address {owner} is not this node's wallet {} (from {}); on TON the \
             owner is the wallet that signs",
            config_path.display(),
            wallet.address().to_base64_url(),
            t.wallet_seed_file.display()
        );
    }
    Ok((seed, version, wallet_hex))
}

/// Opens the TON chain of `[ton]`; returns it and the owner address as the services take it
/// (the wallet's account id in hex), after checking `owner` names this wallet.
pub fn open(
    config_path: &Path,
    t: &TonFile,
    resolve: impl Fn(&Path) -> PathBuf,
    owner: &str,
) -> Result<(Arc<dyn Chain>, String)> {
    let (seed, version, wallet_hex) = node_wallet(config_path, t, &resolve, owner)?;
    let root = cocoon_ton::parse_address(&t.root)?;
    let api_key = std::env::var(&t.api_key_env).ok().filter(|k| !k.is_empty());
    let api = cocoon_ton::api::ApiConfig::new(&t.api_url, api_key);
    let mut cfg = TonChainConfig::new(api, root, seed);
    cfg.wallet_version = version;
    if let Some(p) = &t.policy {
        let path = resolve(p);
        cfg.policy = LocalChain::open(&path)
            .with_context(|| format!("cannot open policy {}", path.display()))?
            .registry()
            .as_ref()
            .clone();
    }
    let chain = TonChain::connect(cfg)
        .with_context(|| format!("cannot reach the TON root {} via {}", t.root, t.api_url))?;
    Ok((chain, wallet_hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(seed: &Path) -> TonFile {
        toml::from_str(&format!(
            "api_url = \"http://127.0.0.1:9/api/v2\"\nroot = \"0:{}\"\nwallet_seed_file = {:?}\n",
            "11".repeat(32),
            seed
        ))
        .unwrap()
    }

    #[test]
    fn the_owner_must_be_the_nodes_wallet_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("cocoon-ton-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let seed = dir.join("node.seed");
        std::fs::write(&seed, "05".repeat(32)).unwrap();
        let cfg = Path::new("/etc/cocoon/proxy.toml");
        let t = file(&seed);
        let resolve = Path::to_path_buf;
        let err = node_wallet(cfg, &t, &resolve, "alice").err().unwrap();
        assert!(
            err.to_string().contains("is not this node's wallet"),
            "{err}"
        );
        // The wallet's address in either form is accepted, as the services' hex.
        let wallet = NodeWallet::from_seed(&[5; 32], WalletVersion::V4R2).unwrap();
        let hex = hex::encode(wallet.address().hash_part.as_slice());
        for owner in [wallet.address().to_base64_url(), wallet.address().to_hex()] {
            let (s, _, named) = node_wallet(cfg, &t, &resolve, &owner).unwrap();
            assert_eq!((s, named), ([5; 32], hex.clone()));
        }
        std::fs::write(&seed, "not hex").unwrap();
        let err = node_wallet(cfg, &t, &resolve, "x").err().unwrap();
        assert!(err.to_string().contains("64 hex characters"), "{err}");
        assert!(wallet_version("v3").is_err());
        assert!(toml::from_str::<TonFile>(
            "api_url = \"x\"\nroot = \"y\"\nwallet_seed_file = \"z\"\nsurprise = 1"
        )
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
