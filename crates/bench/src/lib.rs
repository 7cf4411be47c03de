//! `cocoon bench`: the benchmark harness of the Cocoon network.
//!
//! Sections (pick with `--sections`):
//! - **relay**: requests/s and latency p50/p90/p99 through the client API versus directly at the
//!   test engine, streaming (SSE) and non-streaming, at several concurrencies, with a closed-loop
//!   keep-alive load generator in this process; plus the time to first byte the network adds.
//! - **scale**: 1..N workers behind one proxy that runs as a child process (so its peak RSS and
//!   CPU time are its own), thousands of concurrent slow streams: completion rate, proxy peak RSS
//!   and CPU.
//!
//! Hot paths (usage scanning, evidence verification, PoW) are criterion benches in
//! `crates/bench/benches/`; `--criterion-dir target/criterion` folds their latest estimates into
//! the report. Benchmarks print figures; nothing here asserts on timings.

mod engine;
mod load;
mod relay;
mod report;
mod scale;
mod sys;

pub use engine::{engine_sample, InProcessEngine};
pub use report::{
    HotPath, Machine, RelayCell, RelayReport, Report, ScaleCell, ScaleReport, Stats, Target,
};

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The model every benchmark engine serves.
pub const MODEL: &str = "test-model";

/// Which parts of the benchmark to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Relay overhead (through the network vs directly at the engine) and added TTFB.
    Relay,
    /// Many concurrent slow streams on one proxy child process.
    Scale,
}

/// Relay request modes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One JSON answer.
    NonStream,
    /// SSE chunks.
    Stream,
}

/// Flags of `cocoon bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Sections to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "relay,scale")]
    pub sections: Vec<Section>,
    /// Fast smoke run: tiny cells and sizes (figures are not meaningful).
    #[arg(long)]
    pub quick: bool,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the report as the Markdown of BENCHMARKS.md (method, machine, figures).
    #[arg(long)]
    pub markdown: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Relay: seconds per cell (default 3; --quick 0.3).
    #[arg(long)]
    pub relay_seconds: Option<f64>,
    /// Relay: at most this many requests per cell (default 50000; --quick 100).
    #[arg(long)]
    pub relay_requests: Option<u64>,
    /// Relay: concurrencies, comma-separated (default 1,30,256; --quick 1,4).
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Option<Vec<usize>>,
    /// Relay: request modes, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "non-stream,stream"
    )]
    pub modes: Vec<Mode>,
    /// Relay: leave Nagle's algorithm on at the test engine's socket (as `TestEngine::serve`
    /// does) instead of setting TCP_NODELAY like real engine servers.
    #[arg(long)]
    pub engine_nagle: bool,
    /// Relay: chunks per answer (default 50; --quick 5).
    #[arg(long)]
    pub chunks: Option<u32>,
    /// Relay and scale: bytes of content per chunk (default 128).
    #[arg(long)]
    pub chunk_size: Option<usize>,
    /// Scale: worker counts, comma-separated (default 1,8,64; --quick 1,2).
    #[arg(long, value_delimiter = ',')]
    pub scale_workers: Option<Vec<usize>>,
    /// Scale: concurrent streams, comma-separated (default 2000,10000; --quick 50).
    #[arg(long, value_delimiter = ',')]
    pub scale_streams: Option<Vec<usize>>,
    /// Scale: chunks per stream (default 50; --quick 5).
    #[arg(long)]
    pub scale_chunks: Option<u32>,
    /// Scale: milliseconds between chunks (default 20).
    #[arg(long)]
    pub scale_delay_ms: Option<u64>,
    /// Scale: app streams per HTTP/2 connection to the client API.
    #[arg(long, default_value_t = 100)]
    pub streams_per_connection: usize,
    /// Scale: the `cocoon` binary that runs the proxy child (default: this executable).
    #[arg(long)]
    pub cocoon_bin: Option<PathBuf>,
    /// Fold criterion's latest hot-path estimates from this directory (e.g. target/criterion).
    #[arg(long)]
    pub criterion_dir: Option<PathBuf>,
    /// Markdown file appended verbatim to the `--markdown` report (analysis, known bottlenecks).
    #[arg(long)]
    pub notes: Option<PathBuf>,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            sections: vec![Section::Relay, Section::Scale],
            quick: false,
            json: false,
            markdown: false,
            out: None,
            relay_seconds: None,
            relay_requests: None,
            concurrency: None,
            modes: vec![Mode::NonStream, Mode::Stream],
            engine_nagle: false,
            chunks: None,
            chunk_size: None,
            scale_workers: None,
            scale_streams: None,
            scale_chunks: None,
            scale_delay_ms: None,
            streams_per_connection: 100,
            cocoon_bin: None,
            criterion_dir: None,
            notes: None,
        }
    }
}

/// Relay section parameters, defaults resolved.
#[derive(Clone, Debug)]
pub struct RelayPlan {
    pub modes: Vec<Mode>,
    pub engine_nagle: bool,
    pub seconds: f64,
    pub max_requests: u64,
    pub concurrency: Vec<usize>,
    pub chunks: u32,
    pub chunk_size: usize,
}

/// Scale section parameters, defaults resolved.
#[derive(Clone, Debug)]
pub struct ScalePlan {
    pub workers: Vec<usize>,
    pub streams: Vec<usize>,
    pub chunks: u32,
    pub chunk_size: usize,
    pub delay: Duration,
    pub streams_per_connection: usize,
    pub cocoon_bin: PathBuf,
}

impl BenchArgs {
    pub fn relay_plan(&self) -> RelayPlan {
        let q = self.quick;
        RelayPlan {
            modes: self.modes.clone(),
            engine_nagle: self.engine_nagle,
            seconds: self.relay_seconds.unwrap_or(if q { 0.3 } else { 3.0 }),
            max_requests: self.relay_requests.unwrap_or(if q { 100 } else { 50_000 }),
            concurrency: self.concurrency.clone().unwrap_or_else(|| {
                if q {
                    vec![1, 4]
                } else {
                    vec![1, 30, 256]
                }
            }),
            chunks: self.chunks.unwrap_or(if q { 5 } else { 50 }),
            chunk_size: self.chunk_size.unwrap_or(128),
        }
    }

    pub fn scale_plan(&self) -> Result<ScalePlan> {
        let q = self.quick;
        let cocoon_bin = match &self.cocoon_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("cannot find the current executable")?,
        };
        Ok(ScalePlan {
            workers: self.scale_workers.clone().unwrap_or_else(|| {
                if q {
                    vec![1, 2]
                } else {
                    vec![1, 8, 64]
                }
            }),
            streams: self.scale_streams.clone().unwrap_or_else(|| {
                if q {
                    vec![50]
                } else {
                    vec![2_000, 10_000]
                }
            }),
            chunks: self.scale_chunks.unwrap_or(if q { 5 } else { 50 }),
            chunk_size: self.chunk_size.unwrap_or(128),
            delay: Duration::from_millis(self.scale_delay_ms.unwrap_or(20)),
            streams_per_connection: self.streams_per_connection.max(1),
            cocoon_bin,
        })
    }
}

/// Runs the selected sections and returns the report (no printing besides progress on stderr).
pub async fn collect(args: &BenchArgs, shutdown: CancellationToken) -> Result<Report> {
    sys::raise_nofile_limit();
    let mut report = Report::new(args.quick);
    if args.sections.contains(&Section::Relay) {
        let plan = args.relay_plan();
        report.relay = Some(relay::run(&plan, &shutdown).await?);
    }
    if args.sections.contains(&Section::Scale) && !shutdown.is_cancelled() {
        let plan = args.scale_plan()?;
        report.scale = Some(scale::run(&plan, &shutdown).await?);
    }
    if let Some(dir) = &args.criterion_dir {
        report.hot_paths = report::read_criterion(dir)?;
    }
    report.finish();
    Ok(report)
}

/// `cocoon bench`: runs, then prints (or writes) the table, JSON or Markdown.
pub async fn run(args: BenchArgs, shutdown: CancellationToken) -> Result<()> {
    if args.out.is_none() && std::env::var_os("RUST_LOG").is_none() {
        eprintln!(
            "note: node logs go to stdout; set RUST_LOG=warn or use --out FILE for clean output"
        );
    }
    let report = collect(&args, shutdown).await?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else if args.markdown {
        let mut md = report.markdown();
        if let Some(path) = &args.notes {
            md.push_str(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
        }
        md
    } else {
        report.table()
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Progress line on stderr (never mixed into the report on stdout).
pub(crate) fn progress(msg: impl std::fmt::Display) {
    eprintln!("[bench] {msg}");
}
