//! The report: figures, targets, and their rendering as a table, JSON or Markdown.

use crate::sys;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub quick: bool,
    /// Unix seconds when the run started.
    pub started_unix: u64,
    pub relay: Option<RelayReport>,
    pub scale: Option<ScaleReport>,
    pub hot_paths: Vec<HotPath>,
    pub targets: Vec<Target>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_gib: f64,
    pub kernel: String,
    pub nofile_limit: u64,
    /// /proc/loadavg (1, 5, 15 min) before and after the run: the machine may be shared.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
}

/// Figures of one closed-loop run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub ttfb_p50_ms: f64,
    pub ttfb_p90_ms: f64,
    pub bytes_per_response: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RelayCell {
    pub streaming: bool,
    pub concurrency: usize,
    pub direct: Stats,
    pub through: Stats,
    /// through.rps / direct.rps: the headline.
    pub ratio: f64,
    pub added_p50_ms: f64,
    pub added_ttfb_p50_ms: f64,
}

impl RelayCell {
    pub fn new(streaming: bool, concurrency: usize, direct: Stats, through: Stats) -> Self {
        RelayCell {
            streaming,
            concurrency,
            ratio: if direct.rps > 0.0 {
                through.rps / direct.rps
            } else {
                0.0
            },
            added_p50_ms: through.p50_ms - direct.p50_ms,
            added_ttfb_p50_ms: through.ttfb_p50_ms - direct.ttfb_p50_ms,
            direct,
            through,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RelayReport {
    /// The test engine's socket had TCP_NODELAY (the default; `--engine-nagle` turns it off).
    pub engine_nodelay: bool,
    pub chunks: u32,
    pub chunk_size: usize,
    pub seconds_per_cell: f64,
    pub max_requests_per_cell: u64,
    pub cells: Vec<RelayCell>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleCell {
    pub workers: usize,
    pub streams: usize,
    pub completed: u64,
    pub failed: u64,
    pub completion_rate: f64,
    /// Most streams open (headers received, not finished) at one moment.
    pub peak_open: usize,
    /// chunks × delay: how long a stream lasts with no overhead at all.
    pub nominal_stream_s: f64,
    pub stream_p50_s: f64,
    pub stream_max_s: f64,
    pub wall_s: f64,
    pub proxy_idle_rss_mib: f64,
    /// VmHWM of the proxy process (peak resident set since it started).
    pub proxy_peak_rss_mib: f64,
    /// utime + stime of the proxy during the load.
    pub proxy_cpu_s: f64,
    pub proxy_cpu_pct_of_core: f64,
    pub first_error: Option<String>,
    /// Failures grouped by message (digits dropped), most frequent first.
    pub error_kinds: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScaleReport {
    pub chunks: u32,
    pub chunk_size: usize,
    pub delay_ms: u64,
    pub streams_per_connection: usize,
    pub cells: Vec<ScaleCell>,
}

/// One criterion benchmark's latest estimate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HotPath {
    pub name: String,
    pub median_ns: f64,
    pub mean_ns: f64,
    /// Bytes per second when the bench declares a byte throughput.
    pub mib_per_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub goal: String,
    pub measured: String,
    /// None: not measured in this run (section skipped or sizes too small).
    pub met: Option<bool>,
}

impl Report {
    pub fn new(quick: bool) -> Self {
        Report {
            machine: Machine {
                nproc: sys::nproc(),
                cpu_model: sys::cpu_model(),
                mem_total_gib: sys::mem_total_bytes() as f64 / (1u64 << 30) as f64,
                kernel: sys::kernel(),
                nofile_limit: sys::raise_nofile_limit(),
                load_before: sys::loadavg(),
                load_after: [0.0; 3],
            },
            quick,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            relay: None,
            scale: None,
            hot_paths: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Records the load after the run and evaluates the targets.
    pub fn finish(&mut self) {
        self.machine.load_after = sys::loadavg();
        self.targets = self.evaluate();
    }

    fn relay_cell(&self, streaming: bool, c: usize) -> Option<&RelayCell> {
        self.relay
            .as_ref()?
            .cells
            .iter()
            .find(|x| x.streaming == streaming && x.concurrency == c)
    }

    fn evaluate(&self) -> Vec<Target> {
        let unmeasured = |name: &str, goal: &str| Target {
            name: name.into(),
            goal: goal.into(),
            measured: "not measured".into(),
            met: None,
        };
        let mut t = Vec::new();
        let (n1, g1) = ("non-stream c=30 throughput", "≥ 50% of direct req/s");
        let (n2, g2) = ("non-stream c=30 added p50", "≤ 1 ms");
        match self.relay_cell(false, 30) {
            Some(c) => {
                t.push(Target {
                    name: n1.into(),
                    goal: g1.into(),
                    measured: format!(
                        "{:.0}% ({:.0} vs {:.0} req/s)",
                        100.0 * c.ratio,
                        c.through.rps,
                        c.direct.rps
                    ),
                    met: Some(c.ratio >= 0.5 && c.through.errors == 0),
                });
                t.push(Target {
                    name: n2.into(),
                    goal: g2.into(),
                    measured: format!("{:.2} ms", c.added_p50_ms),
                    met: Some(c.added_p50_ms <= 1.0),
                });
            }
            None => {
                t.push(unmeasured(n1, g1));
                t.push(unmeasured(n2, g2));
            }
        }
        let (n3, g3) = ("stream c=1 added TTFB p50", "≤ 2 ms");
        match self.relay_cell(true, 1) {
            Some(c) => t.push(Target {
                name: n3.into(),
                goal: g3.into(),
                measured: format!("{:.2} ms", c.added_ttfb_p50_ms),
                met: Some(c.added_ttfb_p50_ms <= 2.0 && c.through.errors == 0),
            }),
            None => t.push(unmeasured(n3, g3)),
        }
        let (n4, g4) = ("10,000 slow streams on one proxy", "all complete");
        let (n5, g5) = ("proxy peak RSS at 10,000 streams", "< 1 GiB");
        let big: Vec<&ScaleCell> = self
            .scale
            .iter()
            .flat_map(|s| &s.cells)
            .filter(|c| c.streams >= 10_000)
            .collect();
        if big.is_empty() {
            t.push(unmeasured(n4, g4));
            t.push(unmeasured(n5, g5));
        } else {
            let done: u64 = big.iter().map(|c| c.completed).sum();
            let all: usize = big.iter().map(|c| c.streams).sum();
            t.push(Target {
                name: n4.into(),
                goal: g4.into(),
                measured: format!("{done}/{all} over {} run(s)", big.len()),
                met: Some(done == all as u64),
            });
            let peak = big.iter().map(|c| c.proxy_peak_rss_mib).fold(0.0, f64::max);
            t.push(Target {
                name: n5.into(),
                goal: g5.into(),
                measured: format!("{peak:.0} MiB (worst run)"),
                met: Some(peak < 1024.0),
            });
        }
        t
    }

    /// Human-readable tables.
    pub fn table(&self) -> String {
        self.render(false)
    }

    /// BENCHMARKS.md: method, machine and figures.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("# Benchmarks\n\n");
        out.push_str(
            "Regenerate with `./scripts/bench.sh` (release build, criterion hot paths, then \
             `cocoon bench --markdown`). Benchmarks are programs that print figures; no test \
             asserts on timings. Figures from a shared machine are noisy: the load average \
             before and after the run is recorded below.\n\n",
        );
        out.push_str(METHOD);
        out.push_str(&self.render(true));
        out
    }

    fn render(&self, md: bool) -> String {
        let mut out = String::new();
        let h = |out: &mut String, title: &str| {
            if md {
                out.push_str(&format!("## {title}\n\n"));
            } else {
                out.push_str(&format!("== {title} ==\n"));
            }
        };
        let m = &self.machine;
        h(&mut out, "Machine");
        out.push_str(&table(
            md,
            &[
                "nproc",
                "CPU",
                "memory",
                "kernel",
                "load before",
                "load after",
            ],
            &[vec![
                m.nproc.to_string(),
                m.cpu_model.clone(),
                format!("{:.1} GiB", m.mem_total_gib),
                m.kernel.clone(),
                fmt_load(m.load_before),
                fmt_load(m.load_after),
            ]],
        ));
        if self.quick {
            out.push_str(if md {
                "\n**Quick run**: tiny sizes, figures not meaningful.\n"
            } else {
                "\n(quick run: tiny sizes, figures not meaningful)\n"
            });
        }
        out.push('\n');

        h(&mut out, "Targets");
        let rows: Vec<Vec<String>> = self
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.goal.clone(),
                    t.measured.clone(),
                    match t.met {
                        Some(true) => "met".into(),
                        Some(false) => "MISSED".into(),
                        None => "—".into(),
                    },
                ]
            })
            .collect();
        out.push_str(&table(md, &["target", "goal", "measured", "result"], &rows));
        out.push('\n');

        if let Some(r) = &self.relay {
            h(&mut out, "Relay overhead");
            out.push_str(&format!(
                "Test engine: {} chunks × {} B, no delay, TCP_NODELAY {}; {} s or {} requests per \
                 cell; latencies in ms.\n\n",
                r.chunks,
                r.chunk_size,
                if r.engine_nodelay { "on" } else { "off" },
                r.seconds_per_cell,
                r.max_requests_per_cell
            ));
            let mut rows = Vec::new();
            for c in &r.cells {
                for (path, s) in [("direct", &c.direct), ("through", &c.through)] {
                    rows.push(vec![
                        if c.streaming { "stream" } else { "non-stream" }.to_string(),
                        c.concurrency.to_string(),
                        path.to_string(),
                        s.requests.to_string(),
                        s.errors.to_string(),
                        format!("{:.0}", s.rps),
                        format!("{:.2}", s.p50_ms),
                        format!("{:.2}", s.p90_ms),
                        format!("{:.2}", s.p99_ms),
                        format!("{:.2}", s.ttfb_p50_ms),
                        if path == "through" {
                            format!("{:.1}%", 100.0 * c.ratio)
                        } else {
                            String::new()
                        },
                        if path == "through" {
                            format!("{:+.2}", c.added_p50_ms)
                        } else {
                            String::new()
                        },
                    ]);
                }
            }
            out.push_str(&table(
                md,
                &[
                    "mode",
                    "c",
                    "path",
                    "requests",
                    "errors",
                    "req/s",
                    "p50",
                    "p90",
                    "p99",
                    "TTFB p50",
                    "ratio",
                    "added p50",
                ],
                &rows,
            ));
            let errors: Vec<String> = r
                .cells
                .iter()
                .flat_map(|c| [&c.direct, &c.through])
                .filter_map(|s| s.first_error.clone())
                .collect();
            if let Some(e) = errors.first() {
                out.push_str(&format!("\nfirst error: {e}\n"));
            }
            if let Some(c) = r.cells.iter().find(|c| c.streaming && c.concurrency == 1) {
                out.push_str(&format!(
                    "\nTime to first byte at c=1 (streaming): direct p50 {:.3} ms, through p50 \
                     {:.3} ms, added {:+.3} ms (p90 direct {:.3} / through {:.3} ms).\n",
                    c.direct.ttfb_p50_ms,
                    c.through.ttfb_p50_ms,
                    c.added_ttfb_p50_ms,
                    c.direct.ttfb_p90_ms,
                    c.through.ttfb_p90_ms
                ));
            }
            out.push('\n');
        }

        if let Some(s) = &self.scale {
            h(
                &mut out,
                "Scale: concurrent slow streams on one proxy (child process)",
            );
            out.push_str(&format!(
                "{} chunks × {} B, {} ms apart (nominal stream {:.1} s); {} streams per HTTP/2 \
                 connection to the client API.\n\n",
                s.chunks,
                s.chunk_size,
                s.delay_ms,
                s.delay_ms as f64 * f64::from(s.chunks) / 1000.0,
                s.streams_per_connection
            ));
            let rows: Vec<Vec<String>> = s
                .cells
                .iter()
                .map(|c| {
                    vec![
                        c.workers.to_string(),
                        c.streams.to_string(),
                        format!("{}/{}", c.completed, c.streams),
                        format!("{:.1}%", 100.0 * c.completion_rate),
                        c.peak_open.to_string(),
                        format!("{:.2}", c.stream_p50_s),
                        format!("{:.2}", c.stream_max_s),
                        format!("{:.2}", c.wall_s),
                        format!("{:.0}", c.proxy_idle_rss_mib),
                        format!("{:.0}", c.proxy_peak_rss_mib),
                        format!("{:.2}", c.proxy_cpu_s),
                        format!("{:.0}%", c.proxy_cpu_pct_of_core),
                    ]
                })
                .collect();
            out.push_str(&table(
                md,
                &[
                    "workers",
                    "streams",
                    "completed",
                    "rate",
                    "peak open",
                    "stream p50 s",
                    "stream max s",
                    "wall s",
                    "proxy idle RSS MiB",
                    "proxy peak RSS MiB",
                    "proxy CPU s",
                    "proxy CPU % of a core",
                ],
                &rows,
            ));
            for c in s.cells.iter().filter(|c| !c.error_kinds.is_empty()) {
                out.push_str(&format!(
                    "\nfailures with {} workers, {} streams:\n",
                    c.workers, c.streams
                ));
                for (kind, n) in &c.error_kinds {
                    out.push_str(&format!("- {n} × `{kind}`\n"));
                }
            }
            out.push('\n');
        }

        if !self.hot_paths.is_empty() {
            h(&mut out, "Hot paths (criterion)");
            let rows: Vec<Vec<String>> = self
                .hot_paths
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        fmt_ns(p.median_ns),
                        fmt_ns(p.mean_ns),
                        p.mib_per_s
                            .map_or(String::new(), |t| format!("{t:.0} MiB/s")),
                    ]
                })
                .collect();
            out.push_str(&table(
                md,
                &["benchmark", "median", "mean", "throughput"],
                &rows,
            ));
            out.push('\n');
        }
        out
    }
}

const METHOD: &str = "## Method

- **Relay overhead** (`cocoon bench --sections relay`): a closed-loop load generator in the bench
  process (reqwest, HTTP/1.1 keep-alive, one connection per concurrent request, one untimed
  warm-up request per connection) sends the same chat request either **directly** to a test
  engine or **through** a whole in-process network (client API → RA-TLS/HTTP/2 → proxy →
  RA-TLS/HTTP/2 → worker → HTTP/1.1 → test engine with the same config). Both engines produce
  50 chunks × 128 B; streaming requests ask for `include_usage` so direct and relayed answers
  carry the same bytes. Latency = request sent → last body byte; TTFB = request sent → first
  body byte. Everything (load generator, client, proxy, worker, engines) shares one process and
  the machine's cores, as the targets require.
- **Scale** (`--sections scale`): the proxy runs as a **child process** (`cocoon proxy
  --config`) so its peak RSS (`VmHWM` of /proc/PID/status) and CPU time (utime + stime of
  /proc/PID/stat, during the load) are its own. Workers (1, 8, 64) and the client run in the
  bench process; each worker's test engine is called in process (its router, no socket), since
  the worker→engine hop is not what this section measures and 10,000 HTTP/1.1 engine
  connections would exhaust the descriptor limit. All streams are started at once, 100 per
  HTTP/2 connection to the client API; a stream completes when it ends with `data: [DONE]`.
  \"Peak open\" is the most streams that had response headers and had not ended at one moment.
  The bench registry uses PoW difficulty 4 (links are set up once per cell; PoW is measured
  below).
- **Hot paths**: criterion benches in `crates/bench/benches/hot_paths.rs`
  (`cargo bench -p cocoon-bench`): usage scanning of real test-engine SSE chunks and bodies,
  sim certificate verification (sim certificates are not cached), real TDX quote DCAP verification uncached and through the verifier's per-quote cache, and PoW
  solving at the default difficulty (20 bits; fresh salt per solve, so the figure is the mean
  over the geometric distribution), and voucher signing and verification (Ed25519 over the
  fixed 62-byte voucher message).

";

fn fmt_load(l: [f64; 3]) -> String {
    format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// A Markdown table, or a plain one with aligned columns.
fn table(md: bool, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    if md {
        out.push_str(&format!("| {} |\n", headers.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
        for r in rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        return out;
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            s.push_str(&" ".repeat(w - cell.chars().count()));
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(headers.to_vec()));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Latest estimates of every criterion benchmark under `dir` (e.g. target/criterion).
pub fn read_criterion(dir: &Path) -> Result<Vec<HotPath>> {
    let mut found = Vec::new();
    walk(dir, &mut found, 0);
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<HotPath>, depth: usize) {
    if depth > 6 {
        return;
    }
    let new = dir.join("new");
    if let Some(p) = read_one(&new) {
        found.push(p);
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "report") {
            walk(&path, found, depth + 1);
        }
    }
}

fn read_one(new: &Path) -> Option<HotPath> {
    let read = |f: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(new.join(f)).ok()?).ok()
    };
    let bench = read("benchmark.json")?;
    let est = read("estimates.json")?;
    let median_ns = est["median"]["point_estimate"].as_f64()?;
    let mean_ns = est["mean"]["point_estimate"].as_f64()?;
    let bytes = bench["throughput"]["Bytes"]
        .as_f64()
        .or_else(|| bench["throughput"]["BytesDecimal"].as_f64());
    Some(HotPath {
        name: bench["full_id"].as_str()?.to_string(),
        median_ns,
        mean_ns,
        mib_per_s: bytes.map(|b| b / (median_ns / 1e9) / (1024.0 * 1024.0)),
    })
}
