//! `cocoon attest`: produce and check attestation evidence by hand.
//!
//! * `quote` — evidence of this machine: a `sim` quote over devnet measurements, or a real `tdx`
//!   quote from configfs-tsm (fails clearly outside a TD). Raw bytes to `--out`, hex to stdout.
//! * `verify` — the same verification path as RA-TLS peers: sim chain to a pinned root, or DCAP
//!   with the given collateral (offline, `--collateral`, or fetched now from `--pccs-url`) at `--at`; then the policy (production by default).
//!   Prints TCB status, MRTD, RTMR0-3, image hash, report data; fails with the reason.
//! * `image-hash` — the image hash of a quote's measurements (no verification).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use cocoon_attest::report::{image_hash_of, read_quote_file, report_text};
use cocoon_attest::{
    sim, tsm, verify_quote, EvidenceKind, FileCollateral, Measurements, PccsCollateral, Policy,
    TdxVerifier,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Subcommand)]
pub enum AttestCommand {
    /// Print (or write) attestation evidence of this machine.
    Quote {
        /// `sim` (software TEE, devnet measurements for --label) or `tdx` (real, configfs-tsm).
        #[arg(long, default_value = "sim")]
        kind: EvidenceKind,
        /// Devnet measurement label for `sim` quotes (e.g. `proxy`, `worker`).
        #[arg(long, default_value = "worker")]
        label: String,
        /// 64-byte report data as hex (default: zeros).
        #[arg(long)]
        report_data: Option<String>,
        /// Write the raw quote here instead of printing hex.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify a quote and print what it attests; exits non-zero with the reason when invalid.
    Verify {
        /// Quote file (raw bytes or hex).
        #[arg(long)]
        quote: PathBuf,
        /// DCAP collateral JSON for real `tdx` quotes (offline verification).
        #[arg(long, conflicts_with = "pccs_url")]
        collateral: Option<PathBuf>,
        /// Fetch the DCAP collateral from this PCCS/PCS base URL instead
        /// (e.g. https://api.trustedservices.intel.com).
        #[arg(long)]
        pccs_url: Option<String>,
        /// Verification time, UNIX seconds (default: now).
        #[arg(long)]
        at: Option<u64>,
        /// Policy JSON (allow_sim, allowlists, pinned_root_ids...); default: production.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Print the image hash of a quote's measurements (parse only, no verification).
    ImageHash {
        /// Quote file (raw bytes or hex).
        #[arg(long)]
        quote: PathBuf,
    },
}

pub fn run(cmd: AttestCommand) -> Result<()> {
    match cmd {
        AttestCommand::Quote {
            kind,
            label,
            report_data,
            out,
        } => quote(kind, &label, report_data.as_deref(), out),
        AttestCommand::Verify {
            quote,
            collateral,
            pccs_url,
            at,
            policy,
        } => verify(quote, collateral, pccs_url, at, policy),
        AttestCommand::ImageHash { quote } => {
            let raw = read_quote_file(&quote)?;
            println!("{}", to_hex(&image_hash_of(&raw)?));
            Ok(())
        }
    }
}

fn quote(
    kind: EvidenceKind,
    label: &str,
    report_data: Option<&str>,
    out: Option<PathBuf>,
) -> Result<()> {
    let mut rd = [0u8; 64];
    if let Some(text) = report_data {
        let bytes = from_hex(text).context("--report-data")?;
        if bytes.len() != 64 {
            bail!("--report-data must be 64 bytes (128 hex chars)");
        }
        rd.copy_from_slice(&bytes);
    }
    let raw = match kind {
        EvidenceKind::Sim => sim::build_quote(&Measurements::for_label(label), &rd)?,
        EvidenceKind::Tdx => tsm::tdx_quote(&rd)?,
        EvidenceKind::None => bail!("`none` evidence has no quote"),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &raw).with_context(|| format!("write {}", path.display()))?
        }
        None => println!("{}", to_hex(&raw)),
    }
    Ok(())
}

fn verify(
    quote: PathBuf,
    collateral: Option<PathBuf>,
    pccs_url: Option<String>,
    at: Option<u64>,
    policy: Option<PathBuf>,
) -> Result<()> {
    let raw = read_quote_file(&quote)?;
    let mut policy = match policy {
        Some(path) => Policy::from_json(
            &std::fs::read(&path).with_context(|| format!("read {}", path.display()))?,
        )?,
        None => Policy::default(),
    };
    if let Some(path) = collateral {
        policy.tdx = Some(Arc::new(TdxVerifier::new(Arc::new(FileCollateral::load(
            &path,
        )?))));
    }
    if let Some(url) = pccs_url {
        // Fetch synchronously (no handshake waits on us here), then verify offline against it,
        // so an expired answer is reported precisely at `--at`.
        let parsed = cocoon_attest::td_quote::TdQuote::parse(&raw)
            .context("--pccs-url needs a real tdx quote")?;
        let fetched = PccsCollateral::new(&url)?
            .fetch_blocking(&parsed)
            .with_context(|| format!("fetch DCAP collateral from {url}"))?;
        policy.tdx = Some(Arc::new(TdxVerifier::new(Arc::new(
            FileCollateral::from_collateral((*fetched).clone()),
        ))));
    }
    let now = at.map_or_else(SystemTime::now, |s| UNIX_EPOCH + Duration::from_secs(s));
    let report = verify_quote(&raw, &policy, now).context("quote refused")?;
    print!("{}", report_text(&report));
    Ok(())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Result<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not hex");
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).context("not hex"))
        .collect()
}
