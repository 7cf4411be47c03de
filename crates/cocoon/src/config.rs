//! TOML configuration files for running each role as its own process
//! (`cocoon proxy|worker|client --config FILE.toml`). Unknown keys are errors, so a typo
//! never silently falls back to a default.

use anyhow::{bail, Context, Result};
use cocoon_attest::{EvidenceKind, Measurements};
use cocoon_chain::{Chain, LocalChain};
use cocoon_net::LinkTiming;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Relative paths inside a config file are relative to the file.
fn resolve(config_path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// The chain a role uses: a registry JSON file (each process keeps its own ledger: fine
/// without payments), the URL of `cocoon chain serve` (one shared ledger: needed once
/// payments are on), or `[ton]` (a real TON network). Returns it and the owner address the
/// services take.
fn open_chain(
    config_path: &Path,
    registry: &Option<PathBuf>,
    chain_url: &Option<String>,
    ton: &Option<crate::ton_config::TonFile>,
    owner: &str,
) -> Result<(Arc<dyn Chain>, String)> {
    if let Some(t) = ton {
        if registry.is_some() || chain_url.is_some() {
            bail!("set one of `registry`, `chain_url` or [ton]");
        }
        return crate::ton_config::open(config_path, t, |p| resolve(config_path, p), owner);
    }
    let chain: Arc<dyn Chain> = match (registry, chain_url) {
        (Some(_), Some(_)) => bail!("set either `registry` (a file) or `chain_url`, not both"),
        (None, None) => {
            bail!("set `registry` (a registry JSON file), `chain_url` (a chain server) or [ton] (a TON network)")
        }
        (Some(registry), None) => {
            let path = resolve(config_path, registry);
            LocalChain::open(&path)
                .with_context(|| format!("cannot open registry {}", path.display()))?
        }
        (None, Some(url)) => cocoon_chain::RemoteChain::connect(url)
            .with_context(|| format!("cannot reach the chain at {url}"))?,
    };
    Ok((chain, owner.to_string()))
}

/// Optional `[payments]` table of a proxy (DESIGN §6). Without it the proxy serves for free.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyPaymentsFile {
    /// Directory of the proxy's voucher key and DB (relative to the config file).
    pub state_dir: PathBuf,
    /// Stake in nanoTON for the proxy contract's deploy; 0 = the registry minimum.
    #[serde(default)]
    pub stake: u64,
    #[serde(default = "payment_defaults::commit_ms")]
    pub commit_interval_ms: u64,
    #[serde(default = "payment_defaults::anchor_ms")]
    pub anchor_interval_ms: u64,
    #[serde(default = "payment_defaults::threshold")]
    pub charge_threshold_tokens: u64,
    #[serde(default = "payment_defaults::threshold")]
    pub payout_threshold_tokens: u64,
    #[serde(default = "payment_defaults::idle_ms")]
    pub idle_settle_ms: u64,
}

mod payment_defaults {
    pub fn commit_ms() -> u64 {
        1_000
    }
    pub fn anchor_ms() -> u64 {
        30_000
    }
    pub fn threshold() -> u64 {
        1_000_000
    }
    pub fn idle_ms() -> u64 {
        60_000
    }
    pub fn poll_ms() -> u64 {
        1_000
    }
    pub fn charge_lag_ms() -> u64 {
        5_000
    }
}

impl ProxyPaymentsFile {
    fn payments(&self, config_path: &Path) -> Result<cocoon_proxy::ProxyPayments> {
        if self.commit_interval_ms == 0 || self.anchor_interval_ms == 0 {
            bail!("[payments] intervals must be positive");
        }
        if self.anchor_interval_ms < self.commit_interval_ms {
            bail!("[payments] anchor_interval_ms must not be below commit_interval_ms");
        }
        let mut p = cocoon_proxy::ProxyPayments::new(resolve(config_path, &self.state_dir));
        p.stake = self.stake;
        p.commit_interval = Duration::from_millis(self.commit_interval_ms);
        p.anchor_interval = Duration::from_millis(self.anchor_interval_ms);
        p.charge_threshold = self.charge_threshold_tokens;
        p.payout_threshold = self.payout_threshold_tokens;
        p.idle_settle = Duration::from_millis(self.idle_settle_ms);
        Ok(p)
    }
}

/// Optional `[link]` table: handshake timeout and keepalive of node links.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkFile {
    pub handshake_timeout_ms: Option<u64>,
    pub keepalive_interval_ms: Option<u64>,
    pub keepalive_timeout_ms: Option<u64>,
}

impl LinkFile {
    fn timing(&self) -> Result<LinkTiming> {
        let d = LinkTiming::default();
        let ms = |v: Option<u64>, fallback: Duration| v.map_or(fallback, Duration::from_millis);
        let t = LinkTiming {
            handshake_timeout: ms(self.handshake_timeout_ms, d.handshake_timeout),
            keepalive_interval: ms(self.keepalive_interval_ms, d.keepalive_interval),
            keepalive_timeout: ms(self.keepalive_timeout_ms, d.keepalive_timeout),
        };
        if t.handshake_timeout.is_zero()
            || t.keepalive_interval.is_zero()
            || t.keepalive_timeout.is_zero()
        {
            bail!("[link] timeouts must be positive");
        }
        Ok(t)
    }
}

/// A DCAP verifier over the collateral file or PCCS/PCS URL, if one is configured.
fn tdx_verifier(
    config_path: &Path,
    collateral: &Option<PathBuf>,
    collateral_url: &Option<String>,
) -> Result<Option<Arc<cocoon_attest::TdxVerifier>>> {
    let source: Arc<dyn cocoon_attest::CollateralSource> = match (collateral, collateral_url) {
        (Some(_), Some(_)) => {
            bail!("set either tdx_collateral (a file) or tdx_collateral_url (a PCCS/PCS), not both")
        }
        (None, None) => return Ok(None),
        (Some(file), None) => {
            let path = resolve(config_path, file);
            Arc::new(
                cocoon_attest::FileCollateral::load(&path)
                    .with_context(|| format!("cannot load TDX collateral {}", path.display()))?,
            )
        }
        (None, Some(url)) => Arc::new(
            cocoon_attest::PccsCollateral::new(url)
                .with_context(|| format!("bad tdx_collateral_url {url:?}"))?,
        ),
    };
    Ok(Some(Arc::new(cocoon_attest::TdxVerifier::new(source))))
}

fn default_evidence() -> EvidenceKind {
    EvidenceKind::Sim
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub name: String,
    pub owner_address: String,
    /// Registry JSON file shared by the devnet's processes (or use `chain_url`).
    pub registry: Option<PathBuf>,
    /// URL of a chain server (`cocoon chain serve`), e.g. http://127.0.0.1:9090.
    pub chain_url: Option<String>,
    /// Run on a TON network instead (see the README's TON section).
    pub ton: Option<crate::ton_config::TonFile>,
    #[serde(default = "ports::proxy_client")]
    pub client_listen: SocketAddr,
    #[serde(default = "ports::proxy_worker")]
    pub worker_listen: SocketAddr,
    #[serde(default = "ports::proxy_http")]
    pub http_listen: SocketAddr,
    #[serde(default = "default_evidence")]
    pub evidence: EvidenceKind,
    /// Label the `sim` TEE derives its measurements from.
    #[serde(default = "labels::proxy")]
    pub image_label: String,
    pub pow_difficulty: Option<u8>,
    /// Intel DCAP collateral (JSON) to verify peers' `tdx` quotes offline.
    pub tdx_collateral: Option<PathBuf>,
    /// PCCS/PCS base URL to fetch that collateral from instead (online; cached until expiry).
    pub tdx_collateral_url: Option<String>,
    #[serde(default)]
    pub link: LinkFile,
    pub payments: Option<ProxyPaymentsFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerFile {
    pub name: String,
    pub owner_address: String,
    pub registry: Option<PathBuf>,
    pub chain_url: Option<String>,
    /// Run on a TON network instead (see the README's TON section).
    pub ton: Option<crate::ton_config::TonFile>,
    /// The model this worker serves (`name@revision:weights_hash`); or use `[[models]]`.
    pub model_id: Option<String>,
    /// OpenAI-compatible base URL of the engine, e.g. http://127.0.0.1:8000/v1.
    pub engine_url: Option<String>,
    /// `builtin`: serve `weights` (a GGUF file) with the built-in llama.cpp engine.
    pub engine: Option<String>,
    #[serde(default = "defaults::coefficient")]
    pub coefficient: u32,
    #[serde(default = "defaults::max_active")]
    pub max_active_requests: u32,
    /// Proxy worker endpoints; empty = every proxy in the registry.
    #[serde(default)]
    pub proxies: Vec<String>,
    /// Weights file to verify against the hash in `model_id` before serving. A GGUF file
    /// also gives the worker the model's tokenizer, to count tokens itself when the engine
    /// reports no usage.
    pub weights: Option<PathBuf>,
    /// Several models from one process (one proxy link each), instead of the single
    /// `model_id`/`engine_url`/`engine`/`weights` above.
    #[serde(default)]
    pub models: Vec<ModelFile>,
    /// Built-in engine settings.
    #[serde(default)]
    pub builtin: BuiltinFile,
    /// Health and stats (`/healthz`, `/jsonstats`), and the operator endpoints (`/admin/…`).
    /// With several models, model N listens on this port + N.
    #[serde(default = "ports::worker_http")]
    pub http_listen: SocketAddr,
    /// Bearer token of the operator endpoints (`cocoon worker enable|disable|…`); unset =
    /// they are off.
    pub admin_token: Option<String>,
    #[serde(default = "default_evidence")]
    pub evidence: EvidenceKind,
    #[serde(default = "labels::worker")]
    pub image_label: String,
    #[serde(default = "defaults::max_pow")]
    pub max_pow_difficulty: u8,
    /// Intel DCAP collateral (JSON) to verify peers' `tdx` quotes offline.
    pub tdx_collateral: Option<PathBuf>,
    /// PCCS/PCS base URL to fetch that collateral from instead (online; cached until expiry).
    pub tdx_collateral_url: Option<String>,
    #[serde(default)]
    pub link: LinkFile,
}

/// One model of a multi-model worker (`[[models]]`).
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub model_id: String,
    pub engine_url: Option<String>,
    pub engine: Option<String>,
    pub weights: Option<PathBuf>,
    pub coefficient: Option<u32>,
    pub max_active_requests: Option<u32>,
}

/// `[builtin]`: the built-in engine's shape.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BuiltinFile {
    #[serde(default = "defaults::slots")]
    pub slots: u32,
    #[serde(default = "defaults::context")]
    pub context_per_slot: u32,
    pub threads: Option<u32>,
}

impl Default for BuiltinFile {
    fn default() -> Self {
        Self {
            slots: defaults::slots(),
            context_per_slot: defaults::context(),
            threads: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// `[payments]`: pay the proxies that charge (deploy a client contract, top it up).
    pub payments: Option<ClientPaymentsFile>,
    /// `[[api_keys]]`: bearer keys the API demands; none = open API.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyFile>,
    pub name: String,
    pub owner_address: String,
    pub registry: Option<PathBuf>,
    pub chain_url: Option<String>,
    /// Run on a TON network instead (see the README's TON section).
    pub ton: Option<crate::ton_config::TonFile>,
    #[serde(default = "ports::client_http")]
    pub http_listen: SocketAddr,
    /// Proxy client endpoints; empty = every proxy in the registry.
    #[serde(default)]
    pub proxies: Vec<String>,
    #[serde(default = "defaults::max_pow")]
    pub max_pow_difficulty: u8,
    /// Intel DCAP collateral (JSON) to verify peers' `tdx` quotes offline.
    pub tdx_collateral: Option<PathBuf>,
    /// PCCS/PCS base URL to fetch that collateral from instead (online; cached until expiry).
    pub tdx_collateral_url: Option<String>,
    #[serde(default)]
    pub link: LinkFile,
}

/// One `[[api_keys]]` entry of a client.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyFile {
    pub name: String,
    /// The secret apps send as `Authorization: Bearer <key>`.
    pub key: String,
    /// Most nanoTON this key may spend.
    pub spend_cap: Option<u64>,
    pub requests_per_minute: Option<u32>,
}

fn api_keys(files: &[ApiKeyFile]) -> Result<Vec<cocoon_client::ApiKey>> {
    let mut seen = std::collections::HashSet::new();
    files
        .iter()
        .map(|k| {
            if k.key.len() < 16 || !k.key.bytes().all(|b| b.is_ascii_graphic()) {
                bail!(
                    "api key {:?}: the key must be at least 16 printable characters",
                    k.name
                );
            }
            if !seen.insert(k.key.as_str()) {
                bail!("api key {:?}: the same key is listed twice", k.name);
            }
            Ok(cocoon_client::ApiKey {
                name: k.name.clone(),
                secret: k.key.clone(),
                spend_cap: k.spend_cap,
                requests_per_minute: k.requests_per_minute,
            })
        })
        .collect()
}

/// A client's `[payments]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPaymentsFile {
    /// nanoTON deposited when the client contract is deployed, and with each top-up.
    pub deposit: u64,
    #[serde(default = "payment_defaults::poll_ms")]
    pub poll_ms: u64,
    #[serde(default = "payment_defaults::charge_lag_ms")]
    pub charge_lag_ms: u64,
}

impl ClientPaymentsFile {
    fn payments(&self) -> Result<cocoon_client::ClientPayments> {
        if self.deposit == 0 || self.poll_ms == 0 {
            bail!("[payments] deposit and poll_ms must be positive");
        }
        let mut p = cocoon_client::ClientPayments::with_deposit(self.deposit);
        p.poll = Duration::from_millis(self.poll_ms);
        p.charge_lag = Duration::from_millis(self.charge_lag_ms);
        Ok(p)
    }
}

mod ports {
    use std::net::SocketAddr;
    pub fn proxy_http() -> SocketAddr {
        ([127, 0, 0, 1], 11000).into()
    }
    pub fn proxy_worker() -> SocketAddr {
        ([127, 0, 0, 1], 11001).into()
    }
    pub fn proxy_client() -> SocketAddr {
        ([127, 0, 0, 1], 11002).into()
    }
    pub fn worker_http() -> SocketAddr {
        ([127, 0, 0, 1], 12000).into()
    }
    pub fn client_http() -> SocketAddr {
        ([127, 0, 0, 1], 10000).into()
    }
}

mod labels {
    pub fn proxy() -> String {
        cocoon_devnet::PROXY_IMAGE_LABEL.into()
    }
    pub fn worker() -> String {
        cocoon_devnet::WORKER_IMAGE_LABEL.into()
    }
}

mod defaults {
    pub fn coefficient() -> u32 {
        1000
    }
    pub fn slots() -> u32 {
        4
    }
    pub fn context() -> u32 {
        4096
    }
    pub fn max_active() -> u32 {
        64
    }
    pub fn max_pow() -> u8 {
        cocoon_attest::pow::CLIENT_MAX_DIFFICULTY
    }
}

pub fn proxy(path: &Path) -> Result<cocoon_proxy::ProxyConfig> {
    let f: ProxyFile = read(path)?;
    let (chain, owner_address) =
        open_chain(path, &f.registry, &f.chain_url, &f.ton, &f.owner_address)?;
    Ok(cocoon_proxy::ProxyConfig {
        chain,
        name: f.name,
        owner_address,
        client_listen: f.client_listen,
        worker_listen: f.worker_listen,
        http_listen: Some(f.http_listen),
        evidence: f.evidence,
        measurements: Measurements::for_label(&f.image_label),
        tdx_verifier: tdx_verifier(path, &f.tdx_collateral, &f.tdx_collateral_url)?,
        pow_difficulty: f.pow_difficulty,
        timing: f.link.timing()?,
        payments: f.payments.as_ref().map(|p| p.payments(path)).transpose()?,
        routing: Default::default(),
    })
}

/// The worker configs of a worker file: one per model it serves.
pub fn workers(path: &Path) -> Result<Vec<cocoon_worker::WorkerConfig>> {
    let f: WorkerFile = read(path)?;
    if let Some(t) = &f.admin_token {
        if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("admin_token must be at least 16 printable characters (no spaces)");
        }
    }
    let single = ModelFile {
        model_id: f.model_id.clone().unwrap_or_default(),
        engine_url: f.engine_url.clone(),
        engine: f.engine.clone(),
        weights: f.weights.clone(),
        coefficient: None,
        max_active_requests: None,
    };
    let models = match (f.models.is_empty(), &f.model_id) {
        (true, Some(_)) => vec![single],
        (true, None) => bail!("set model_id (or list models in [[models]])"),
        (false, None) if f.engine_url.is_none() && f.engine.is_none() && f.weights.is_none() => {
            f.models.clone()
        }
        (false, _) => bail!(
            "with [[models]], put model_id, engine_url, engine and weights in each [[models]] entry, not at the top"
        ),
    };
    let (chain, owner_address) =
        open_chain(path, &f.registry, &f.chain_url, &f.ton, &f.owner_address)?;
    let tdx = tdx_verifier(path, &f.tdx_collateral, &f.tdx_collateral_url)?;
    let hardware = cocoon_worker::detect_hardware();
    let many = models.len() > 1;
    models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let engine = model_engine(path, m, &f.builtin)
                .with_context(|| format!("model {}", m.model_id))?;
            let max_active_requests = m.max_active_requests.unwrap_or(f.max_active_requests);
            if max_active_requests == 0 {
                bail!("max_active_requests must be at least 1");
            }
            let mut http_listen = f.http_listen;
            if many && http_listen.port() != 0 {
                let port = u16::try_from(usize::from(http_listen.port()) + i)
                    .context("http_listen port + model index overflows")?;
                http_listen.set_port(port);
            }
            Ok(cocoon_worker::WorkerConfig {
                chain: chain.clone(),
                name: if many {
                    format!("{}-{i}", f.name)
                } else {
                    f.name.clone()
                },
                owner_address: owner_address.clone(),
                model_id: m.model_id.clone(),
                coefficient: m.coefficient.unwrap_or(f.coefficient),
                max_active_requests,
                proxies: f.proxies.clone(),
                http_listen: Some(http_listen),
                admin_token: f.admin_token.clone(),
                weights: m.weights.as_deref().map(|w| resolve(path, w)),
                evidence: f.evidence,
                measurements: Measurements::for_label(&f.image_label),
                tdx_verifier: tdx.clone(),
                hardware: hardware.clone(),
                max_pow_difficulty: f.max_pow_difficulty,
                engine_probe_interval: Duration::from_secs(1),
                reconnect_interval: Duration::from_millis(500),
                timing: f.link.timing()?,
                engine: engine.engine,
                token_counter: engine.counter,
            })
        })
        .collect()
}

/// The single worker config of a one-model worker file.
#[cfg(test)]
pub fn worker(path: &Path) -> Result<cocoon_worker::WorkerConfig> {
    let mut all = workers(path)?;
    if all.len() != 1 {
        bail!(
            "{} serves {} models; expected one",
            path.display(),
            all.len()
        );
    }
    Ok(all.remove(0))
}

/// A model's engine (and tokenizer, when its weights are a GGUF file and the engine is
/// external).
struct ModelEngine {
    engine: Arc<dyn cocoon_engine::Engine>,
    counter: Option<Arc<dyn cocoon_engine::TokenCounter>>,
}

fn model_engine(path: &Path, m: &ModelFile, builtin: &BuiltinFile) -> Result<ModelEngine> {
    let weights = m.weights.as_deref().map(|w| resolve(path, w));
    let is_gguf = weights.as_deref().is_some_and(|w| {
        w.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    });
    match (m.engine.as_deref(), &m.engine_url) {
        (Some("builtin"), None) => {
            let Some(weights) = weights.filter(|_| is_gguf) else {
                bail!("engine = \"builtin\" needs weights = \"FILE.gguf\"");
            };
            let mut c = cocoon_llama::LlamaConfig::new(weights);
            c.slots = builtin.slots;
            c.context_per_slot = builtin.context_per_slot;
            c.threads = builtin.threads;
            let engine = cocoon_llama::LlamaEngine::load(&c)?;
            Ok(ModelEngine {
                engine: Arc::new(engine),
                counter: None,
            })
        }
        (Some(other), None) => bail!(
            "engine = {other:?}: the only named engine is \"builtin\" (use engine_url for others)"
        ),
        (Some(_), Some(_)) => bail!("set engine_url or engine = \"builtin\", not both"),
        (None, None) => {
            bail!("set engine_url (an OpenAI-compatible server) or engine = \"builtin\"")
        }
        (None, Some(url)) => {
            let engine = cocoon_engine::HttpEngine::new(url, None)
                .with_context(|| format!("bad engine_url {url:?}"))?;
            // The weights check at start is the authority on the file; a tokenizer that
            // cannot be read only means answers without usage cannot be counted.
            let counter: Option<Arc<dyn cocoon_engine::TokenCounter>> = match weights {
                Some(w) if is_gguf => match cocoon_llama::GgufTokenizer::open(&w) {
                    Ok(t) => Some(Arc::new(t)),
                    Err(e) => {
                        tracing::warn!(
                            "cannot read the tokenizer of {}: {e}; answers without usage will be billed zero",
                            w.display()
                        );
                        None
                    }
                },
                _ => None,
            };
            Ok(ModelEngine {
                engine: Arc::new(engine),
                counter,
            })
        }
    }
}

pub fn client(path: &Path) -> Result<cocoon_client::ClientConfig> {
    let f: ClientFile = read(path)?;
    let (chain, owner_address) =
        open_chain(path, &f.registry, &f.chain_url, &f.ton, &f.owner_address)?;
    Ok(cocoon_client::ClientConfig {
        chain,
        name: f.name,
        owner_address,
        http_listen: f.http_listen,
        proxies: f.proxies,
        max_pow_difficulty: f.max_pow_difficulty,
        tdx_verifier: tdx_verifier(path, &f.tdx_collateral, &f.tdx_collateral_url)?,
        reconnect_interval: Duration::from_millis(500),
        timing: f.link.timing()?,
        defaults: cocoon_client::RequestDefaults::default(),
        payments: f.payments.as_ref().map(|p| p.payments()).transpose()?,
        api_keys: api_keys(&f.api_keys)?,
    })
}
