//! Operator commands (DESIGN §9): `cocoon worker init|status|enable|disable|set-coefficient|
//! payout` and `cocoon proxy status|withdraw`. Status commands read a running node's
//! `/jsonstats` (open); worker actions call its `/admin/…` endpoints with the admin token.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a worker's HTTP port listens by default.
pub const DEFAULT_WORKER_URL: &str = "http://127.0.0.1:12000";
/// Where a proxy's HTTP port listens by default.
pub const DEFAULT_PROXY_URL: &str = "http://127.0.0.1:11000";
/// How long one call to a node may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Subcommand)]
pub enum WorkerCmd {
    /// Detect this machine's hardware and write a commented worker config (TOML) with a
    /// fresh admin token.
    Init(Box<InitArgs>),
    /// A running worker at a glance: enabled, engine, model, coefficient, load, earnings
    /// per proxy (its /jsonstats, for humans).
    Status(StatusArgs<WorkerUrl>),
    /// Offer the worker to proxies again after `disable` (it stays off while its engine is
    /// down).
    Enable(AdminArgs),
    /// Take no new requests (running ones finish). Lasts until `enable` or a restart; the
    /// engine health check never re-enables it.
    Disable(AdminArgs),
    /// Change the price coefficient (×1000: 1000 = the registry's prices, 1500 = 1.5×);
    /// proxies apply it to the next request.
    SetCoefficient {
        /// The new coefficient, 1 to 1000000.
        coefficient: u32,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Submit the payout vouchers the worker holds to the chain now (it also does so by
    /// itself when idle), and show what happened per proxy.
    Payout(AdminArgs),
}

#[derive(Subcommand)]
pub enum ProxyCmd {
    /// A running proxy at a glance: workers (model, coefficient, load, TTFT, breaker),
    /// clients and payments (anchored DB seqno, alarms).
    Status(StatusArgs<ProxyUrl>),
    /// Pay the proxy's earned commission to its owner. The same as
    /// `cocoon wallet proxy withdraw` (it runs that command): it talks to the chain, not to
    /// the proxy process.
    Withdraw {
        #[command(flatten)]
        chain: cocoon_wallet::ChainArgs,
        #[command(flatten)]
        at: cocoon_wallet::ContractAt,
        #[command(flatten)]
        format: cocoon_wallet::Format,
    },
}

/// A node's HTTP base URL, with the role's default.
pub trait NodeUrl: Args {
    fn url(&self) -> &str;
    /// "worker" or "proxy", for messages.
    const ROLE: &'static str;
    /// Which config key sets the port, for messages.
    const CONFIG_KEY: &'static str = "http_listen";
}

#[derive(Args)]
pub struct WorkerUrl {
    /// The worker's HTTP port (`http_listen` in its config).
    #[arg(long, default_value = DEFAULT_WORKER_URL)]
    url: String,
}

impl NodeUrl for WorkerUrl {
    fn url(&self) -> &str {
        &self.url
    }
    const ROLE: &'static str = "worker";
}

#[derive(Args)]
pub struct ProxyUrl {
    /// The proxy's HTTP port (`http_listen` in its config).
    #[arg(long, default_value = DEFAULT_PROXY_URL)]
    url: String,
}

impl NodeUrl for ProxyUrl {
    fn url(&self) -> &str {
        &self.url
    }
    const ROLE: &'static str = "proxy";
}

#[derive(Args)]
pub struct StatusArgs<U: NodeUrl> {
    #[command(flatten)]
    pub(crate) node: U,
    /// Print the node's raw /jsonstats instead.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    node: WorkerUrl,
    /// The worker's `admin_token` (from its config).
    #[arg(long, env = "COCOON_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
pub struct InitArgs {
    /// Where to write the config.
    #[arg(long, default_value = "worker.toml")]
    out: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    force: bool,
    /// Instance name proxies show [default: worker-HOSTNAME].
    #[arg(long)]
    name: Option<String>,
    /// The owner wallet earnings go to (64 hex digits, or a devnet wallet name).
    #[arg(long, default_value = "worker-owner")]
    owner: String,
    /// Full model id `name@revision:weights_hash`; with --weights, `name@revision` is enough
    /// (the hash is computed).
    #[arg(long = "model-id", default_value = "test-model@dev:unverified")]
    model_id: String,
    /// Weights file to hash into the model id (and verify at every start).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// OpenAI-compatible base URL of the engine (vLLM, SGLang, llama.cpp server, `cocoon
    /// engine test`…).
    #[arg(long = "engine-url", default_value = "http://127.0.0.1:8000/v1")]
    engine_url: String,
    /// Serve --weights (a GGUF file) with the built-in llama.cpp CPU engine instead of an
    /// external engine.
    #[arg(long, requires = "weights")]
    builtin: bool,
    /// Proxy worker endpoints (host:port) to dial; repeatable [default: every proxy in the
    /// registry].
    #[arg(long = "proxy")]
    proxies: Vec<String>,
    /// Chain server URL (`cocoon chain serve`).
    #[arg(long = "chain-url", default_value = cocoon_wallet::DEFAULT_CHAIN_URL, conflicts_with = "registry")]
    chain_url: String,
    /// A registry JSON file instead of a chain server (devnets without payments).
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Price coefficient ×1000.
    #[arg(long, default_value_t = 1000)]
    coefficient: u32,
    /// Address of the worker's HTTP port (health, stats, operator endpoints).
    #[arg(long = "http-listen", default_value = "127.0.0.1:12000")]
    http_listen: std::net::SocketAddr,
}

// ---------------------------------------------------------------------------------------
// Running the commands.

pub async fn worker(cmd: WorkerCmd) -> Result<()> {
    match cmd {
        WorkerCmd::Init(args) => {
            let out = args.out.clone();
            let path = tokio::task::spawn_blocking(move || init(&args)).await??;
            println!("wrote {}", path.display());
            println!(
                "the admin token is in the file (admin_token): keep it secret; pass it to \
                 `cocoon worker enable|disable|set-coefficient|payout` with --token or \
                 COCOON_ADMIN_TOKEN"
            );
            println!("start the worker: cocoon worker --config {}", out.display());
            Ok(())
        }
        WorkerCmd::Status(args) => {
            let stats = get_stats(&args.node).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", worker_summary(&stats));
            }
            Ok(())
        }
        WorkerCmd::Enable(a) => {
            let r = admin(&a, "enable", None).await?;
            println!("{}", enable_message(&r, false));
            Ok(())
        }
        WorkerCmd::Disable(a) => {
            let r = admin(&a, "disable", None).await?;
            println!("{}", enable_message(&r, true));
            Ok(())
        }
        WorkerCmd::SetCoefficient {
            coefficient,
            admin: a,
        } => {
            let r = admin(
                &a,
                "coefficient",
                Some(json!({ "coefficient": coefficient })),
            )
            .await?;
            println!(
                "coefficient {} → {} (×1000); proxies apply it to the next request",
                r["previous"], r["coefficient"]
            );
            Ok(())
        }
        WorkerCmd::Payout(a) => {
            eprintln!(
                "submitting the payout vouchers held by the worker at {} to the chain …",
                base(a.node.url())
            );
            let r = admin(&a, "payout", None).await?;
            print!("{}", payout_summary(&r));
            Ok(())
        }
    }
}

pub async fn proxy(cmd: ProxyCmd) -> Result<()> {
    match cmd {
        ProxyCmd::Status(args) => {
            let stats = get_stats(&args.node).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!("{}", proxy_summary(&stats));
            }
            Ok(())
        }
        ProxyCmd::Withdraw { chain, at, format } => {
            let cmd = cocoon_wallet::WalletCommand::Proxy(cocoon_wallet::ProxyCommand::Withdraw {
                at,
                format,
            });
            let out =
                tokio::task::spawn_blocking(move || cocoon_wallet::exec(&chain, &cmd)).await??;
            print!("{out}");
            Ok(())
        }
    }
}

/// `URL` without a trailing slash, `http://` added to a bare `host:port`.
fn base(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?)
}

/// One line that says why a node could not be asked.
fn unreachable<U: NodeUrl>(node: &U, e: &reqwest::Error) -> anyhow::Error {
    let url = base(node.url());
    if e.is_connect() {
        anyhow::anyhow!(
            "cannot reach the {} at {url}: is it running, and is --url its {} port?",
            U::ROLE,
            U::CONFIG_KEY
        )
    } else if e.is_timeout() {
        anyhow::anyhow!(
            "the {} at {url} did not answer within {CALL_TIMEOUT:?}",
            U::ROLE
        )
    } else {
        anyhow::anyhow!("cannot talk to the {} at {url}: {e}", U::ROLE)
    }
}

pub(crate) async fn get_stats<U: NodeUrl>(node: &U) -> Result<Value> {
    let url = format!("{}/jsonstats", base(node.url()));
    let response = http()?
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(node, &e))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let stats: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON: is --url a {} port?", U::ROLE))?;
    if stats["role"] != U::ROLE {
        bail!(
            "{} is a {} node, not a {}",
            base(node.url()),
            stats["role"].as_str().unwrap_or("non-Cocoon"),
            U::ROLE
        );
    }
    Ok(stats)
}

/// Calls `POST /admin/<action>` with the token; the JSON answer, or the worker's refusal
/// as one line.
async fn admin(args: &AdminArgs, action: &str, body: Option<Value>) -> Result<Value> {
    let Some(token) = args.token.as_deref().filter(|t| !t.is_empty()) else {
        bail!("give the worker's admin_token with --token TOKEN or COCOON_ADMIN_TOKEN");
    };
    let url = format!("{}/admin/{action}", base(args.node.url()));
    let response = http()?
        .post(&url)
        .bearer_auth(token)
        .json(&body.unwrap_or_else(|| json!({})))
        .send()
        .await
        .map_err(|e| unreachable(&args.node, &e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = value["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| text.trim().chars().take(200).collect());
        let hint = match status.as_u16() {
            404 => " (is --url a worker's HTTP port, and is the worker this version?)",
            _ => "",
        };
        bail!("the worker refused ({status}): {why}{hint}");
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------
// Human summaries (pure, so they are tested on sample JSON).

fn enable_message(r: &Value, disabled: bool) -> String {
    if disabled {
        return "worker disabled: running requests finish, proxies send it no new ones \
                (`cocoon worker enable` undoes it)"
            .into();
    }
    if r["enabled"] == true {
        "worker enabled: proxies send it requests again".into()
    } else if r["engine_ok"] == false {
        "operator switch on, but the engine is down: the worker offers itself once the engine \
         answers"
            .into()
    } else {
        "operator switch on; the worker is not enabled yet".into()
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `12345678` nanoTON as `0.012345678 TON`.
fn ton(nano: u64) -> String {
    format!("{}.{:09} TON", nano / 1_000_000_000, nano % 1_000_000_000)
}

/// First 8 hex digits of an address, for tables.
fn short(v: &Value) -> String {
    let s = v.as_str().unwrap_or("-");
    if s.len() > 12 {
        format!("{}…", &s[..8])
    } else {
        s.to_string()
    }
}

fn coefficient_text(c: &Value) -> String {
    let c = u(c);
    format!("{c} (×{}.{:03} prices)", c / 1000, c % 1000)
}

pub fn worker_summary(s: &Value) -> String {
    let mut o = String::new();
    let state = if s["enabled"] == true {
        "ENABLED (taking requests)"
    } else if s["operator_disabled"] == true {
        "DISABLED by the operator (`cocoon worker enable` to undo)"
    } else {
        "DISABLED: engine down"
    };
    let _ = writeln!(o, "worker       {}", s["name"].as_str().unwrap_or("?"));
    let _ = writeln!(o, "state        {state}");
    let _ = writeln!(
        o,
        "engine       {}",
        if s["engine_ok"] == true {
            "up"
        } else {
            "DOWN (not answering its health probe)"
        }
    );
    let _ = writeln!(o, "model        {}", s["model_id"].as_str().unwrap_or("?"));
    let _ = writeln!(o, "coefficient  {}", coefficient_text(&s["coefficient"]));
    let st = &s["stats"];
    let _ = writeln!(
        o,
        "requests     {} active of {} max; {} served, {} failed",
        u(&s["active_requests"]),
        u(&s["max_active_requests"]),
        u(&st["succeeded"]),
        u(&st["failed"]),
    );
    let _ = writeln!(
        o,
        "tokens       {} prompt, {} completion",
        u(&st["prompt_tokens"]),
        u(&st["completion_tokens"])
    );
    let _ = writeln!(o, "proxies      {} connected", u(&st["connected_proxies"]));
    let hw = &s["hardware"];
    let gpu = match (hw["gpu_model"].as_str().unwrap_or(""), u(&hw["gpu_count"])) {
        (_, 0) | ("", _) => "no GPU".to_string(),
        (model, n) => format!("{n}× {model}"),
    };
    let _ = writeln!(
        o,
        "hardware     {gpu}, {} CPU cores, {} MiB memory",
        u(&hw["cpu_cores"]),
        u(&hw["memory_mib"])
    );
    let _ = writeln!(
        o,
        "admin        {}",
        if s["admin_endpoints"] == true {
            "on (admin_token set)"
        } else {
            "off (set admin_token in the config to use enable/disable/set-coefficient/payout)"
        }
    );
    let p = &s["payments"];
    let fee = u(&s["worker_fee_per_token"]);
    let proxies = p["proxies"].as_array().cloned().unwrap_or_default();
    if proxies.is_empty() {
        let _ = writeln!(o, "earnings     none yet (no paying proxy has reported)");
    } else {
        let (mut voucher, mut paid) = (0u64, 0u64);
        for x in &proxies {
            voucher += u(&x["voucher_tokens"]);
            paid += u(&x["paid_tokens"]);
        }
        let _ = writeln!(
            o,
            "earnings     {} tokens vouched = {} ({} paid out, {} unpaid); {} payouts, {} refusals",
            voucher,
            ton(voucher.saturating_mul(fee)),
            ton(paid.saturating_mul(fee)),
            ton(voucher.saturating_sub(paid).saturating_mul(fee)),
            u(&p["payouts"]),
            u(&p["refusals"]),
        );
        for x in &proxies {
            let (v, pd) = (u(&x["voucher_tokens"]), u(&x["paid_tokens"]));
            let _ = writeln!(
                o,
                "  proxy {}  voucher {v} tokens, paid {pd}, unpaid {} ({})",
                short(&x["proxy_contract"]),
                v.saturating_sub(pd),
                ton(v.saturating_sub(pd).saturating_mul(fee)),
            );
        }
    }
    o
}

pub fn payout_summary(r: &Value) -> String {
    let mut o = String::new();
    let proxies = r["proxies"].as_array().cloned().unwrap_or_default();
    if proxies.is_empty() {
        o.push_str("no payout vouchers held: no paying proxy has reported to this worker yet\n");
        return o;
    }
    for p in &proxies {
        let what = match p["result"].as_str().unwrap_or("") {
            "submitted" => format!(
                "submitted: paid up to {} tokens ({} were unpaid)",
                u(&p["voucher_tokens"]),
                u(&p["unpaid_tokens"])
            ),
            "nothing_unpaid" => format!(
                "nothing to pay: the contract is paid up to {} tokens",
                u(&p["paid_before_tokens"])
            ),
            "already_paid" => "already paid (the proxy submitted it first)".into(),
            "no_voucher" => "no voucher yet".into(),
            "failed" => format!("FAILED: {}", p["error"].as_str().unwrap_or("?")),
            other => other.to_string(),
        };
        let _ = writeln!(o, "proxy {}  {what}", short(&p["proxy_contract"]));
    }
    let _ = writeln!(o, "{} payout(s) submitted", u(&r["submitted"]));
    o
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.0}"))
}

pub fn proxy_summary(s: &Value) -> String {
    let mut o = String::new();
    let st = &s["stats"];
    let workers = s["workers"].as_array().cloned().unwrap_or_default();
    let enabled = workers.iter().filter(|w| w["enabled"] == true).count();
    let _ = writeln!(o, "proxy        {}", s["name"].as_str().unwrap_or("?"));
    let _ = writeln!(
        o,
        "requests     {} ({} succeeded, {} failed, {} retried); billed {}",
        u(&st["requests"]),
        u(&st["succeeded"]),
        u(&st["failed"]),
        u(&st["retries"]),
        ton(u(&st["billed_nanoton"])),
    );
    let _ = writeln!(
        o,
        "clients      {} connected; {} connections refused",
        u(&st["connected_clients"]),
        u(&st["rejected_connections"])
    );
    let _ = writeln!(
        o,
        "workers      {} connected, {enabled} enabled",
        workers.len()
    );
    if !workers.is_empty() {
        let _ = writeln!(
            o,
            "  {:<4} {:<16} {:<24} {:>7} {:>9} {:>8} {:>7} {:>6} {:<9} STATE",
            "ID", "NAME", "MODEL", "COEF", "LOAD", "TTFT ms", "TOK/S", "OK%", "BREAKER"
        );
        for w in &workers {
            let model = w["model_id"].as_str().unwrap_or("?");
            let _ = writeln!(
                o,
                "  {:<4} {:<16} {:<24} {:>7} {:>9} {:>8} {:>7} {:>6} {:<9} {}",
                u(&w["id"]),
                w["name"].as_str().unwrap_or("?"),
                cocoon_worker::base_model_name(model),
                u(&w["coefficient"]),
                format!("{}/{}", u(&w["active"]), u(&w["max_active"])),
                ms(&w["ttft_ms"]),
                ms(&w["tokens_per_s"]),
                w["success_rate"]
                    .as_f64()
                    .map_or("-".into(), |x| format!("{:.0}", x * 100.0)),
                w["breaker"].as_str().unwrap_or("?"),
                if w["enabled"] == true {
                    "enabled"
                } else {
                    "disabled"
                },
            );
        }
    }
    for m in s["models"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "model        {}: {} worker(s), coefficient {}–{}",
            m["name"].as_str().unwrap_or("?"),
            u(&m["workers"]),
            u(&m["min_coefficient"]),
            u(&m["max_coefficient"])
        );
    }
    let p = &s["payments"];
    if p.is_null() {
        let _ = writeln!(o, "payments     off (free service)");
        return o;
    }
    let anchored = if p["anchored_seqno"].is_null() {
        "none yet".to_string()
    } else {
        p["anchored_seqno"].to_string()
    };
    let _ = writeln!(
        o,
        "payments     contract {}; DB seqno {}, anchored seqno {anchored}",
        short(&p["contract"]),
        u(&p["db_seqno"]),
    );
    let _ = writeln!(
        o,
        "             {} charges, {} payouts, {} refunds, {} anchors; errors: {} chain, {} DB",
        u(&p["charges"]),
        u(&p["payouts"]),
        u(&p["refunds"]),
        u(&p["anchors"]),
        u(&p["chain_errors"]),
        u(&p["db_errors"]),
    );
    let alarms = u(&p["alarms"]);
    if alarms == 0 {
        let _ = writeln!(o, "alarms       none");
    } else {
        let last = match &p["last_alarm"] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        let _ = writeln!(o, "alarms       {alarms} (last: {last})");
    }
    for c in p["clients"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  client {}  balance {}, charged {} tokens, uncharged {}, in flight {}",
            short(&c["contract"]),
            ton(u(&c["balance"])),
            u(&c["tokens_charged"]),
            u(&c["uncharged_tokens"]),
            u(&c["in_flight"]),
        );
    }
    for w in p["workers"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  worker {}  voucher {} tokens, paid {}, unpaid {}",
            short(&w["contract"]),
            u(&w["voucher_tokens"]),
            u(&w["paid_tokens"]),
            u(&w["unpaid_tokens"]),
        );
    }
    o
}

// ---------------------------------------------------------------------------------------
// `cocoon worker init`.

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// 32 random hex digits from the OS.
fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Hashes the weights file, with a progress line on stderr for files of 64 MiB or more.
fn hash_weights(path: &Path) -> Result<String> {
    const SHOW_FROM: u64 = 64 << 20;
    let mut last_percent = None;
    let mut stderr = std::io::stderr();
    let hash = cocoon_worker::hash_weights_file_with_progress(path, |done, total| {
        let percent = done.saturating_mul(100) / total.max(1);
        if total >= SHOW_FROM && last_percent != Some(percent) {
            last_percent = Some(percent);
            let _ = write!(
                stderr,
                "\rhashing {} ({} MiB): {percent}%",
                path.display(),
                total >> 20
            );
            let _ = stderr.flush();
        }
    })?;
    if last_percent.is_some() {
        eprintln!();
    }
    Ok(hash)
}

/// The model id to write: with a weights file, its hash replaces (or completes) the hash
/// part; a given hash must then match.
fn model_id_for(args: &InitArgs) -> Result<String> {
    let Some(weights) = &args.weights else {
        if !args.model_id.contains('@') {
            bail!("--model-id must be name@revision:weights_hash (or give --weights FILE)");
        }
        return Ok(args.model_id.clone());
    };
    let (name_rev, given) = match args.model_id.split_once('@') {
        Some((name, rest)) => match rest.rsplit_once(':') {
            Some((rev, hash)) => (format!("{name}@{rev}"), Some(hash.to_string())),
            None => (args.model_id.clone(), None),
        },
        None => bail!("--model-id must be name@revision (the hash comes from --weights)"),
    };
    let hash = hash_weights(weights)?;
    if let Some(given) = given.filter(|g| !g.is_empty() && g != "unverified") {
        if !given.eq_ignore_ascii_case(&hash) {
            bail!(
                "{} hashes to {hash}, not to the {given} in --model-id",
                weights.display()
            );
        }
    }
    Ok(format!("{name_rev}:{hash}"))
}

/// The config text `init` writes.
fn render_config(
    args: &InitArgs,
    model_id: &str,
    hardware: &cocoon_proto::HardwareProfile,
    admin_token: &str,
) -> String {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("worker-{}", hostname().unwrap_or_else(|| "0".into())));
    let gpu = if hardware.gpu_count == 0 || hardware.gpu_model.is_empty() {
        "none detected (fine for the test engine or a CPU engine such as llama.cpp)".into()
    } else {
        format!(
            "{}× {} ({} MiB VRAM, driver {}, confidential computing {})",
            hardware.gpu_count,
            hardware.gpu_model,
            hardware.vram_mib,
            if hardware.driver.is_empty() {
                "?"
            } else {
                &hardware.driver
            },
            if hardware.cc_mode { "on" } else { "off" }
        )
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Cocoon worker config, written by `cocoon worker init`."
    );
    let _ = writeln!(o, "# Run it with: cocoon worker --config <this file>");
    let _ = writeln!(o, "#");
    let _ = writeln!(
        o,
        "# Hardware detected on this machine (sent to proxies at each handshake):"
    );
    let _ = writeln!(o, "#   GPU:    {gpu}");
    let _ = writeln!(o, "#   CPU:    {} cores", hardware.cpu_cores);
    let _ = writeln!(o, "#   memory: {} MiB", hardware.memory_mib);
    let _ = writeln!(o);
    let _ = writeln!(o, "# Instance name proxies show in their stats.");
    let _ = writeln!(o, "name = {}", q(&name));
    let _ = writeln!(
        o,
        "# Wallet your earnings go to: 64 hex digits (or a devnet wallet name)."
    );
    let _ = writeln!(o, "owner_address = {}", q(&args.owner));
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "# The chain: a `cocoon chain serve` URL, or a registry JSON file."
    );
    match &args.registry {
        Some(r) => {
            let _ = writeln!(o, "registry = {}", q(&r.display().to_string()));
        }
        None => {
            let _ = writeln!(o, "chain_url = {}", q(&args.chain_url));
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "# The model: name@revision:weights_hash, allowlisted in the registry."
    );
    let _ = writeln!(o, "model_id = {}", q(model_id));
    match &args.weights {
        Some(w) => {
            let _ = writeln!(
                o,
                "# Hashed at every start; the worker refuses to run on other weights."
            );
            let _ = writeln!(o, "weights = {}", q(&w.display().to_string()));
        }
        None => {
            let _ = writeln!(
                o,
                "# weights = \"model.gguf\"   # verified against the hash in model_id at start"
            );
        }
    }
    if args.builtin {
        let _ = writeln!(
            o,
            "# The built-in llama.cpp CPU engine serves the weights above (a GGUF file)."
        );
        let _ = writeln!(
            o,
            "engine = \"builtin\"   # its settings: [builtin] at the end"
        );
        let _ = writeln!(o);
    } else {
        let _ = writeln!(
            o,
            "# OpenAI-compatible base URL of the engine (vLLM, SGLang, llama.cpp server)."
        );
        let _ = writeln!(
            o,
            "# With a GGUF in `weights`, the worker counts tokens itself when the engine"
        );
        let _ = writeln!(o, "# reports no usage (llama.cpp servers when streaming).");
        let _ = writeln!(o, "engine_url = {}", q(&args.engine_url));
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "# Price coefficient ×1000 (1000 = the registry's prices). Change it while running"
    );
    let _ = writeln!(o, "# with `cocoon worker set-coefficient N`.");
    let _ = writeln!(o, "coefficient = {}", args.coefficient);
    let _ = writeln!(o, "# Most requests served at once, over every proxy.");
    let _ = writeln!(o, "max_active_requests = 64");
    if args.proxies.is_empty() {
        let _ = writeln!(
            o,
            "# Proxy worker endpoints to dial; unset = every proxy in the registry."
        );
        let _ = writeln!(o, "# proxies = [\"127.0.0.1:11001\"]");
    } else {
        let list: Vec<String> = args.proxies.iter().map(|p| q(p)).collect();
        let _ = writeln!(o, "# Proxy worker endpoints to dial.");
        let _ = writeln!(o, "proxies = [{}]", list.join(", "));
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "# Health, stats and operator endpoints (/healthz, /jsonstats, /metrics, /admin/…)."
    );
    let _ = writeln!(o, "http_listen = {}", q(&args.http_listen.to_string()));
    let _ = writeln!(
        o,
        "# Bearer token of the operator endpoints (`cocoon worker enable|disable|set-coefficient|"
    );
    let _ = writeln!(
        o,
        "# payout --token …`). Keep it secret; remove the line to turn those endpoints off."
    );
    let _ = writeln!(o, "admin_token = {}", q(admin_token));
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "# Evidence: `sim` (software TEE, devnets) or `tdx` (a real Intel TDX guest)."
    );
    let _ = writeln!(o, "evidence = \"sim\"");
    let _ = writeln!(
        o,
        "# For `tdx` proxies: tdx_collateral = \"collateral.json\" or tdx_collateral_url = \"https://…\""
    );
    if args.builtin {
        // A TOML table takes every key after it: it has to come last.
        let _ = writeln!(o);
        let _ = writeln!(o, "[builtin]");
        let _ = writeln!(
            o,
            "# Requests decoded at once, and context per request (prompt + answer, tokens)."
        );
        let _ = writeln!(o, "slots = 4");
        let _ = writeln!(o, "context_per_slot = 4096");
        let _ = writeln!(
            o,
            "# threads = {}   # default: half the logical cores",
            (hardware.cpu_cores / 2).max(1)
        );
    }
    o
}

/// Writes the config; refuses to replace a file without `--force`. Returns the path.
fn init(args: &InitArgs) -> Result<PathBuf> {
    if args.out.exists() && !args.force {
        bail!(
            "{} already exists: pick another --out, or --force to overwrite it",
            args.out.display()
        );
    }
    if !(1..=1_000_000).contains(&args.coefficient) {
        bail!("--coefficient must be between 1 and 1000000 (×1000)");
    }
    eprintln!("detecting hardware …");
    let hardware = cocoon_worker::detect_hardware();
    let model_id = model_id_for(args)?;
    let text = render_config(args, &model_id, &hardware, &random_token());
    write_private(&args.out, &text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(args.out.clone())
}

/// Writes `text` readable by its owner only (it holds the admin token).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: WorkerCmd,
    }

    fn init_args(extra: &[&str]) -> InitArgs {
        let mut argv = vec!["t", "init"];
        argv.extend_from_slice(extra);
        match Cli::parse_from(argv).cmd {
            WorkerCmd::Init(a) => *a,
            _ => unreachable!(),
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cocoon-operator-{tag}-{}-{}",
            std::process::id(),
            random_token()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn init_builtin_writes_a_config_that_loads_the_model() {
        let model = cocoon_llama::fetch::default_model_path();
        assert!(model.is_file(), "run `cocoon model fetch` first");
        let dir = temp_dir("builtin");
        let registry = dir.join("registry.json");
        cocoon_chain::LocalChain::write_file(&registry, &cocoon_devnet::dev_registry("x@y:z", 4))
            .unwrap();
        let out = dir.join("worker.toml");
        let args = init_args(&[
            "--out",
            out.to_str().unwrap(),
            "--registry",
            "registry.json",
            "--model-id",
            "SmolLM2-135M-Instruct@q4_1",
            "--weights",
            model.to_str().unwrap(),
            "--builtin",
        ]);
        init(&args).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("engine = \"builtin\"") && text.contains("[builtin]"),
            "{text}"
        );
        let config = crate::config::worker(&out).expect("the written config loads the engine");
        assert_eq!(
            config.model_id,
            format!(
                "SmolLM2-135M-Instruct@q4_1:{}",
                cocoon_llama::fetch::DEFAULT_MODEL_SHA256
            )
        );
        assert!(
            config.token_counter.is_none(),
            "the built-in engine reports usage"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn one_worker_file_serves_several_models() {
        let model = cocoon_llama::fetch::default_model_path();
        let dir = temp_dir("multi");
        let registry = dir.join("registry.json");
        cocoon_chain::LocalChain::write_file(&registry, &cocoon_devnet::dev_registry("a@b:c", 4))
            .unwrap();
        let out = dir.join("worker.toml");
        let text = format!(
            r#"name = "w"
owner_address = "o"
registry = "registry.json"
http_listen = "127.0.0.1:12000"

[[models]]
model_id = "small@q4:abc"
engine_url = "http://127.0.0.1:8000/v1"
weights = {model:?}

[[models]]
model_id = "big@fp16:def"
engine_url = "http://127.0.0.1:8001/v1"
coefficient = 2000
"#
        );
        std::fs::write(&out, text).unwrap();
        let configs = crate::config::workers(&out).unwrap();
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[0].name, "w-0");
        assert_eq!(configs[1].model_id, "big@fp16:def");
        assert_eq!(configs[1].coefficient, 2000);
        assert_eq!(configs[0].http_listen.unwrap().port(), 12000);
        assert_eq!(configs[1].http_listen.unwrap().port(), 12001);
        // A GGUF next to an external engine gives that model a tokenizer for counting.
        assert!(configs[0].token_counter.is_some());
        assert!(configs[1].token_counter.is_none());
        // Mixing the single-model keys with [[models]] is refused with a clear message.
        std::fs::write(
            &out,
            "name = \"w\"\nowner_address = \"o\"\nregistry = \"registry.json\"\nmodel_id = \"a@b:c\"\nengine_url = \"http://h:1/v1\"\n[[models]]\nmodel_id = \"x@y:z\"\nengine_url = \"http://h:2/v1\"\n",
        )
        .unwrap();
        let err = match crate::config::workers(&out) {
            Ok(_) => panic!("mixed single-model keys and [[models]] must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("[[models]]"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn init_writes_a_config_the_worker_accepts_and_refuses_to_overwrite() {
        let dir = temp_dir("init");
        let registry = dir.join("registry.json");
        cocoon_chain::LocalChain::write_file(
            &registry,
            &cocoon_devnet::dev_registry("test-model@dev:unverified", 4),
        )
        .unwrap();
        let out = dir.join("worker.toml");
        let out_s = out.to_str().unwrap();
        let args = init_args(&[
            "--out",
            out_s,
            "--registry",
            "registry.json",
            "--proxy",
            "127.0.0.1:11001",
            "--owner",
            "alice \"the\" operator",
            "--coefficient",
            "1500",
        ]);
        init(&args).unwrap();
        let config = crate::config::worker(&out).expect("the written config parses");
        assert_eq!(config.model_id, "test-model@dev:unverified");
        assert_eq!(config.coefficient, 1500);
        assert_eq!(config.owner_address, "alice \"the\" operator");
        assert_eq!(config.proxies, vec!["127.0.0.1:11001".to_string()]);
        let token = config.admin_token.expect("a fresh admin token");
        assert_eq!(token.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the token file is private: {mode:o}");
        }
        // A second init neither overwrites nor changes the token; --force does.
        let err = init(&args).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let again = crate::config::worker(&out).unwrap();
        assert_eq!(again.admin_token.as_deref(), Some(token.as_str()));
        init(&init_args(&[
            "--out",
            out_s,
            "--registry",
            "registry.json",
            "--force",
        ]))
        .unwrap();
        let forced = crate::config::worker(&out).unwrap();
        assert_ne!(forced.admin_token.as_deref(), Some(token.as_str()));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn init_hashes_weights_into_the_model_id() {
        let dir = temp_dir("weights");
        let weights = dir.join("model.bin");
        std::fs::write(&weights, b"tiny weights").unwrap();
        let hash = cocoon_worker::hash_weights_file(&weights).unwrap();
        let w = weights.to_str().unwrap();
        let id = model_id_for(&init_args(&["--model-id", "m@r1", "--weights", w])).unwrap();
        assert_eq!(id, format!("m@r1:{hash}"));
        let same = model_id_for(&init_args(&["--model-id", &id, "--weights", w])).unwrap();
        assert_eq!(same, id);
        let wrong = format!("m@r1:{}", "ab".repeat(32));
        assert!(model_id_for(&init_args(&["--model-id", &wrong, "--weights", w])).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn summaries_read_sample_stats() {
        let worker = json!({
            "role": "worker", "name": "w0", "model_id": "m@r:h", "coefficient": 1500,
            "engine_ok": true, "enabled": false, "operator_disabled": true,
            "admin_endpoints": true, "worker_fee_per_token": 10,
            "active_requests": 2, "max_active_requests": 8,
            "hardware": {"gpu_model": "", "gpu_count": 0, "cpu_cores": 4, "memory_mib": 1024},
            "payments": {"proxies": [{"proxy_contract": "ab".repeat(32), "voucher_tokens": 300, "paid_tokens": 100}],
                         "payouts": 1, "refusals": 0},
            "stats": {"succeeded": 5, "failed": 1, "prompt_tokens": 50, "completion_tokens": 70, "connected_proxies": 1},
        });
        let text = worker_summary(&worker);
        for needle in [
            "DISABLED by the operator",
            "1500 (×1.500",
            "2 active of 8",
            "300 tokens vouched = 0.000003000 TON",
            "unpaid 200",
            "abababab…",
        ] {
            assert!(text.contains(needle), "{needle:?} in\n{text}");
        }
        let proxy = json!({
            "role": "proxy", "name": "p0",
            "stats": {"requests": 3, "succeeded": 3, "connected_clients": 1},
            "workers": [{"id": 1, "name": "w0", "model_id": "m@r:h", "coefficient": 1500,
                         "enabled": false, "active": 0, "max_active": 8, "ttft_ms": 12.3,
                         "tokens_per_s": null, "success_rate": 1.0, "breaker": "closed"}],
            "models": [{"name": "m", "workers": 1, "min_coefficient": 1500, "max_coefficient": 1500}],
            "payments": {"contract": "cd".repeat(32), "db_seqno": 9, "anchored_seqno": 7,
                         "alarms": 1, "last_alarm": "rolled back", "clients": [], "workers": []},
        });
        let text = proxy_summary(&proxy);
        for needle in [
            "1 connected, 0 enabled",
            "anchored seqno 7",
            "alarms       1 (last: rolled back)",
            "closed",
            "disabled",
        ] {
            assert!(text.contains(needle), "{needle:?} in\n{text}");
        }
        assert!(proxy_summary(&json!({"payments": null})).contains("payments     off"));
    }

    #[test]
    fn urls_get_a_scheme() {
        assert_eq!(base("127.0.0.1:12000/"), "http://127.0.0.1:12000");
        assert_eq!(base("http://h:1"), "http://h:1");
    }
}
