//! Crash, outage and load tests with real processes: the proxy's money (DESIGN §6, rollback
//! resistance), worker failover mid-answer, and 2,000 concurrent streams (issue 6).
//!
//! The chain is a `LocalChain` in this process, served over HTTP; the proxy and a worker run
//! as `cocoon proxy|worker --config` child processes that reach it by `chain_url`; engine and
//! client run in this process, so the client's stats and payment views can be read.
//!
//! - `sigkill_under_load_loses_and_double_charges_nothing`: the proxy is SIGKILLed while
//!   requests stream through it and restarted on the same state directory. No counter goes
//!   back (the client and the worker never refuse the restarted proxy, the chain's counters
//!   only grow), nothing is charged twice, nothing the proxy had committed is lost, and once
//!   settled the worker is paid exactly what the client was charged.
//! - `an_old_copy_of_the_proxy_db_is_refused_at_start`: a copy of the state directory taken
//!   at an earlier anchor is put back after a SIGKILL; `cocoon proxy` refuses to start on it
//!   ("rolled back") and serves nothing, while the latest state starts and serves again.
//! - `a_worker_killed_mid_stream_is_replaced_without_the_app_noticing`: with two worker
//!   processes, the one streaming an answer is SIGKILLed half way; the proxy continues the
//!   answer on the other from what the app has, the app's stream is the uninterrupted answer,
//!   and each worker is paid for what it delivered.
//! - `two_thousand_concurrent_streams_through_one_proxy`: 2,000 streaming requests at once
//!   through one proxy process (two worker processes); every one completes, the books agree
//!   with the chain afterwards, and the proxy's peak resident memory is reported.

mod common;

use cocoon_chain::ledger::{Address, ContractState, Op, World};
use cocoon_chain::{Chain, LocalChain, ProxyEntry};
use cocoon_engine::test_engine::TestEngineConfig;
use common::free_port;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const MODEL: &str = "test-model";
const MODEL_ID: &str = "test-model@dev:unverified";
const TON: u64 = 1_000_000_000;
const PROXY_OWNER: &str = "crash-proxy-owner";
const CLIENT_OWNER: &str = "crash-client-owner";
const WORKER_OWNER: &str = "crash-worker-owner";
/// The proxy's `[payments]` settings: DB batch and anchor intervals, charge and payout
/// thresholds.
#[derive(Clone, Copy)]
struct Cadence {
    commit_ms: u64,
    anchor_ms: u64,
    threshold_tokens: u64,
}
/// Fast batches and anchors, as the devnet runs.
const FAST: Cadence = Cadence {
    commit_ms: 100,
    anchor_ms: 300,
    threshold_tokens: 500,
};
/// Production's shape (batches ~1 s, anchors every 30–60 s, thresholds of 1M tokens),
/// scaled down: anchors less often than DB batches, and a charge threshold above what one
/// anchor interval bills. So, as in production, a crash under load finds usage held only
/// in memory, a DB batch not yet anchored, and anchored (voucher-signed) usage the chain
/// has not charged yet.
const PRODUCTION_SHAPE: Cadence = Cadence {
    commit_ms: 500,
    anchor_ms: 1_000,
    threshold_tokens: 20_000,
};
const IDLE_SETTLE_MS: u64 = 1_000;
/// Concurrent request loops of the load.
const CONCURRENCY: usize = 3;

/// A child process killed when the test ends, pass or fail. Its stdout and stderr go to a
/// log file, shown when the test fails.
struct Proc {
    child: Child,
    args: Vec<String>,
    log: PathBuf,
}

impl Proc {
    fn spawn(args: &[&str], log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("child log file");
        let err = out.try_clone().expect("child log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cocoon"))
            .args(args)
            .env("RUST_LOG", "warn,cocoon_proxy::money=info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn cocoon");
        Proc {
            child,
            args: args.iter().map(|s| s.to_string()).collect(),
            log: log.to_path_buf(),
        }
    }

    /// SIGKILL: no shutdown code runs (no last DB batch, no goodbye to peers).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        *self = Proc::spawn(&args, &self.log.clone());
    }

    /// Waits for the process to exit on its own; None when it is still running at `limit`.
    async fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// Copies every file of `from` into `to` (the proxy's key, DB and WAL).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Makes `dir` hold exactly the files of `from`.
fn restore_dir(from: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    copy_dir(from, dir);
}

/// Chain, proxy and worker processes, engine and client in this process.
struct Net {
    dir: PathBuf,
    state_dir: PathBuf,
    chain: Arc<LocalChain>,
    /// Where the chain is served over HTTP, and the switch of that server (outage tests).
    chain_addr: std::net::SocketAddr,
    chain_server: Mutex<CancellationToken>,
    proxy: Proc,
    worker: Proc,
    /// More workers (`start_with`), each with its `/jsonstats` URL.
    more_workers: Vec<(Proc, String)>,
    client: cocoon_client::RunningClient,
    client_url: String,
    proxy_stats_url: String,
    worker_stats_url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Net {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.proxy.kill();
        self.worker.kill();
        for (w, _) in &mut self.more_workers {
            w.kill();
        }
        if std::thread::panicking() {
            let more = self.more_workers.iter().map(|(w, _)| &w.log);
            for p in [&self.proxy.log, &self.worker.log].into_iter().chain(more) {
                eprintln!("===== {} =====\n{}", p.display(), tail(p, 6000));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(tag: &str, cadence: Cadence) -> Net {
    let engine = TestEngineConfig {
        models: vec![MODEL.into()],
        chunks: 6,
        chunk_size: 4,
        chunk_delay: Duration::from_millis(10),
    };
    start_with(tag, cadence, 1, engine, "").await
}

/// `workers` worker processes (owners `crash-worker-owner`, `…-1`, …) on one test engine;
/// `worker_toml` is added to each worker's config.
async fn start_with(
    tag: &str,
    cadence: Cadence,
    workers: usize,
    engine: TestEngineConfig,
    worker_toml: &str,
) -> Net {
    let extra_worker_toml = worker_toml;
    common::init_tracing();
    let dir = std::env::temp_dir().join(format!(
        "cocoon-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let shutdown = CancellationToken::new();
    let (_engine, engine_url) = common::spawn_test_engine(engine, &shutdown).await;

    let (client_port, worker_port, http_port) = (free_port(), free_port(), free_port());
    let worker_http_port = free_port();
    let mut registry = cocoon_devnet::dev_registry(MODEL_ID, 4);
    registry.proxies.push(ProxyEntry {
        name: "proxy-0".into(),
        client_endpoint: format!("127.0.0.1:{client_port}"),
        worker_endpoint: format!("127.0.0.1:{worker_port}"),
    });
    let chain = LocalChain::new(registry);
    for owner in [PROXY_OWNER, CLIENT_OWNER] {
        chain
            .submit(Op::Mint {
                to: Address::wallet(owner),
                amount: 1_000 * TON,
            })
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let chain_addr = listener.local_addr().unwrap();
    let chain_url = format!("http://{chain_addr}");
    let chain_server = shutdown.child_token();
    serve_chain(chain.clone(), listener, chain_server.clone());

    let state_dir = dir.join("proxy-state");
    std::fs::write(
        dir.join("proxy.toml"),
        format!(
            "name = \"proxy-0\"\nowner_address = \"{PROXY_OWNER}\"\nchain_url = \"{chain_url}\"\n\
             client_listen = \"127.0.0.1:{client_port}\"\nworker_listen = \"127.0.0.1:{worker_port}\"\n\
             http_listen = \"127.0.0.1:{http_port}\"\n\
             [payments]\nstate_dir = \"proxy-state\"\ncommit_interval_ms = {}\n\
             anchor_interval_ms = {}\ncharge_threshold_tokens = {}\n\
             payout_threshold_tokens = {}\nidle_settle_ms = {IDLE_SETTLE_MS}\n",
            cadence.commit_ms, cadence.anchor_ms, cadence.threshold_tokens, cadence.threshold_tokens
        ),
    )
    .unwrap();
    let worker_toml = |i: usize, http_port: u16| {
        let (name, owner) = match i {
            0 => ("worker.toml".to_string(), WORKER_OWNER.to_string()),
            i => (format!("worker-{i}.toml"), format!("{WORKER_OWNER}-{i}")),
        };
        std::fs::write(
            dir.join(&name),
            format!(
                "name = \"worker-{i}\"\nowner_address = \"{owner}\"\nchain_url = \"{chain_url}\"\n\
                 model_id = \"{MODEL_ID}\"\nengine_url = \"{engine_url}\"\n\
                 http_listen = \"127.0.0.1:{http_port}\"\nproxies = [\"127.0.0.1:{worker_port}\"]\n\
                 {extra_worker_toml}"
            ),
        )
        .unwrap();
        dir.join(name).to_str().unwrap().to_string()
    };
    let config = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let proxy = Proc::spawn(
        &["proxy", "--config", &config("proxy.toml")],
        &dir.join("proxy.log"),
    );
    let worker = Proc::spawn(
        &["worker", "--config", &worker_toml(0, worker_http_port)],
        &dir.join("worker.log"),
    );
    let more_workers = (1..workers)
        .map(|i| {
            let port = free_port();
            let proc = Proc::spawn(
                &["worker", "--config", &worker_toml(i, port)],
                &dir.join(format!("worker-{i}.log")),
            );
            (proc, format!("http://127.0.0.1:{port}/jsonstats"))
        })
        .collect();
    let mut payments = cocoon_client::ClientPayments::with_deposit(10 * TON);
    payments.poll = Duration::from_millis(100);
    let client = cocoon_client::start(
        cocoon_client::ClientConfig {
            api_keys: Vec::new(),
            payments: Some(payments),
            name: "client".into(),
            owner_address: CLIENT_OWNER.into(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            proxies: vec![format!("127.0.0.1:{client_port}")],
            max_pow_difficulty: cocoon_attest::pow::CLIENT_MAX_DIFFICULTY,
            tdx_verifier: None,
            reconnect_interval: Duration::from_millis(100),
            timing: Default::default(),
            defaults: Default::default(),
            chain: chain.clone(),
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let net = Net {
        client_url: format!("http://{}/v1/chat/completions", client.http_addr),
        proxy_stats_url: format!("http://127.0.0.1:{http_port}/jsonstats"),
        worker_stats_url: format!("http://127.0.0.1:{worker_http_port}/jsonstats"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        dir,
        state_dir,
        chain,
        chain_addr,
        chain_server: Mutex::new(chain_server),
        proxy,
        worker,
        more_workers,
        client,
        shutdown,
    };
    net.wait_serving(Duration::from_secs(30)).await;
    net
}

/// The shape of load request `i`: requests of one shape cost the same.
/// Serves `chain` over HTTP on `listener` until `stop`.
fn serve_chain(chain: Arc<LocalChain>, listener: tokio::net::TcpListener, stop: CancellationToken) {
    tokio::spawn(cocoon_chain::http::serve(chain, listener, async move {
        stop.cancelled().await
    }));
}

impl Net {
    /// The chain service goes away: its port refuses connections.
    fn stop_chain(&self) {
        self.chain_server.lock().unwrap().cancel();
    }

    /// The chain service comes back on the same port, with the same state.
    async fn restart_chain(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.chain_addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("chain port not free yet: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot serve the chain again on {}: {e}", self.chain_addr),
            }
        };
        let token = self.shutdown.child_token();
        *self.chain_server.lock().unwrap() = token.clone();
        serve_chain(self.chain.clone(), listener, token);
    }
}

const SHAPES: usize = 6;

fn request_body(shape: usize) -> (bool, Value) {
    let stream = shape.is_multiple_of(2);
    let body = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": format!("crash load {shape} {}", "y".repeat(shape))}],
        "stream": stream,
        "max_tokens": 2 + shape % 3,
    });
    (stream, body)
}

/// Sends one request; its `usage.total_cost` when it succeeded in full.
async fn one_request(http: &reqwest::Client, url: &str, shape: usize) -> Result<u64, String> {
    let (stream, body) = request_body(shape);
    let res = http
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {text}"));
    }
    let usage = if stream {
        let events = common::sse_events(&text);
        if events.last().map(String::as_str) != Some("[DONE]") {
            return Err(format!("stream did not complete: {text}"));
        }
        events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .find(|v| v["usage"].is_object())
            .map(|v| v["usage"].clone())
            .ok_or_else(|| format!("no usage event: {text}"))?
    } else {
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        v["usage"].clone()
    };
    match usage["total_cost"].as_u64() {
        Some(cost) if cost > 0 => Ok(cost),
        _ => Err(format!("no usage.total_cost: {usage}")),
    }
}

/// One request of the load, as the app saw it.
#[derive(Clone, Debug)]
struct Outcome {
    shape: usize,
    started: Instant,
    ended: Instant,
    /// `usage.total_cost` of a request that succeeded; the error otherwise.
    result: Result<u64, String>,
}

/// A steady stream of mixed streaming and non-streaming requests, `CONCURRENCY` at a time.
struct Load {
    stop: CancellationToken,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(net: &Net) -> Load {
        let stop = CancellationToken::new();
        let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        let tasks = (0..CONCURRENCY)
            .map(|lane| {
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                let (http, url) = (net.http.clone(), net.client_url.clone());
                tokio::spawn(async move {
                    let mut i = lane;
                    while !stop.is_cancelled() {
                        let shape = i % SHAPES;
                        i += CONCURRENCY;
                        let started = Instant::now();
                        let result = one_request(&http, &url, shape).await;
                        let failed = result.is_err();
                        outcomes.lock().unwrap().push(Outcome {
                            shape,
                            started,
                            ended: Instant::now(),
                            result,
                        });
                        if failed {
                            // The proxy is down or reconnecting: do not spin.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            tasks,
        }
    }

    fn successes_started_after(&self, t: Instant) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.started >= t && o.result.is_ok())
            .count()
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// The chain's counters, sampled over the whole test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sample {
    tokens_charged: u64,
    tokens_paid: u64,
    anchor_seqno: u64,
    proxy_contracts: usize,
}

fn sample(world: &World) -> Sample {
    let client_owner = Address::wallet(CLIENT_OWNER);
    Sample {
        tokens_charged: world
            .clients
            .values()
            .filter(|c| c.owner == client_owner)
            .map(|c| c.tokens_charged)
            .sum(),
        tokens_paid: world.workers.values().map(|w| w.tokens_paid).sum(),
        anchor_seqno: world
            .proxies
            .values()
            .map(|p| p.anchor_seqno)
            .max()
            .unwrap_or(0),
        proxy_contracts: world.proxies.len(),
    }
}

struct Sampler {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(chain: Arc<LocalChain>) -> Sampler {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !token.is_cancelled() {
                samples.push(sample(&chain.world().unwrap()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        });
        Sampler { stop, task }
    }

    /// Stops sampling; fails if any chain counter ever went back.
    async fn check_monotonic(self) -> usize {
        self.stop.cancel();
        let samples = self.task.await.unwrap();
        for w in samples.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert!(
                b.tokens_charged >= a.tokens_charged
                    && b.tokens_paid >= a.tokens_paid
                    && b.anchor_seqno >= a.anchor_seqno,
                "a chain counter went back: {a:?} then {b:?}"
            );
        }
        samples.len()
    }
}

impl Net {
    /// Polls until a small paid request succeeds end to end.
    async fn wait_serving(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            if one_request(&self.http, &self.client_url, 1).await.is_ok() {
                return;
            }
            if start.elapsed() > limit {
                panic!(
                    "network did not serve within {limit:?}\n{}",
                    self.diagnostics().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A node's `/jsonstats`; None when it does not answer within a few seconds.
    async fn json(&self, url: &str) -> Option<Value> {
        let res = self
            .http
            .get(url)
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?;
        res.json().await.ok()
    }

    async fn proxy_stats(&self) -> Option<Value> {
        self.json(&self.proxy_stats_url).await
    }

    /// Everything that explains a failure: client refusals, worker and proxy payment stats.
    async fn diagnostics(&self) -> String {
        let refusals = self.client.stats().proxy_refusals.load(Relaxed);
        let views = serde_json::to_string_pretty(&self.client.payments()).unwrap_or_default();
        let worker = self
            .json(&self.worker_stats_url)
            .await
            .map(|v| v["payments"].to_string());
        let proxy = self.proxy_stats().await.map(|v| v["payments"].to_string());
        format!(
            "client: {refusals} proxy refusals, ready links {}; payment views: {views}\n\
             worker payments: {worker:?}\nproxy payments: {proxy:?}\nchain: {:?}",
            self.client.ready_proxies(),
            sample(&self.world())
        )
    }

    fn world(&self) -> Arc<World> {
        self.chain.world().unwrap()
    }

    async fn until(&self, what: &str, limit: Duration, mut check: impl AsyncCheck) {
        let deadline = Instant::now() + limit;
        loop {
            if check.check(self).await {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for: {what}\n{}",
                    self.diagnostics().await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The client's view of the proxy's counters (the highest it saw).
    fn seen(&self) -> cocoon_chain::ledger::CounterView {
        self.client
            .payments()
            .first()
            .map(|v| v.seen)
            .unwrap_or_default()
    }

    /// Neither the client nor the worker ever refused the proxy, and it raised no alarm.
    async fn assert_no_refusal(&self) {
        let refusals = self.client.stats().proxy_refusals.load(Relaxed);
        let views = self.client.payments();
        let worker = self
            .json(&self.worker_stats_url)
            .await
            .expect("worker stats");
        let proxy = self.proxy_stats().await.expect("proxy stats");
        assert!(
            refusals == 0
                && views.iter().all(|v| v.refusals == 0 && v.refused.is_none())
                && worker["payments"]["refusals"] == 0
                && proxy["payments"]["alarms"] == 0,
            "a peer refused the restarted proxy (or it raised an alarm)\n{}",
            self.diagnostics().await
        );
    }
}

/// A condition `Net::until` polls.
trait AsyncCheck {
    async fn check(&mut self, net: &Net) -> bool;
}

/// Condition on the chain's world.
struct OnChain<F>(F);

impl<F: FnMut(&World) -> bool> AsyncCheck for OnChain<F> {
    async fn check(&mut self, net: &Net) -> bool {
        (self.0)(&net.world())
    }
}

/// The proxy is idle and everything it served is settled: its books agree with the chain.
struct Settled;

impl AsyncCheck for Settled {
    async fn check(&mut self, net: &Net) -> bool {
        let Some(stats) = net.proxy_stats().await else {
            return false;
        };
        let p = &stats["payments"];
        let s = sample(&net.world());
        let clients = p["clients"].as_array().cloned().unwrap_or_default();
        let workers = p["workers"].as_array().cloned().unwrap_or_default();
        let used: u64 = clients
            .iter()
            .map(|c| c["counters"]["in_memory"].as_u64().unwrap_or(u64::MAX))
            .sum();
        let earned: u64 = workers
            .iter()
            .map(|w| w["counters"]["in_memory"].as_u64().unwrap_or(u64::MAX))
            .sum();
        clients.len() == 1
            && clients.iter().all(|c| c["in_flight"] == 0)
            && used == s.tokens_charged
            && earned == s.tokens_paid
            && s.tokens_paid == s.tokens_charged
    }
}

/// The proxy's DB is anchored and nothing is waiting for a batch.
struct Quiescent;

impl AsyncCheck for Quiescent {
    async fn check(&mut self, net: &Net) -> bool {
        let Some(stats) = net.proxy_stats().await else {
            return false;
        };
        let p = &stats["payments"];
        let counters_committed = ["clients", "workers"].iter().all(|kind| {
            p[kind].as_array().is_some_and(|rows| {
                rows.iter().all(|r| {
                    let c = &r["counters"];
                    c["in_memory"] == c["committed_db"] && c["committed_db"] == c["committed_chain"]
                })
            })
        });
        let db = p["db_seqno"].as_u64().unwrap_or(0);
        counters_committed
            && db > 0
            && p["anchored_seqno"].as_u64() == Some(db)
            && net.world().proxies.values().any(|c| c.anchor_seqno == db)
    }
}

/// The chain service stops for a while (default a minute; `CHAIN_OUTAGE_SECS` overrides)
/// under load: the proxy and the worker (child processes that reach the chain by URL) lose
/// it, serving goes on within the client's credit, and once it is back settlement catches
/// up — the client is charged and the worker paid exactly what was served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_outage_does_not_stop_serving_and_settlement_catches_up() {
    let outage = Duration::from_secs(
        std::env::var("CHAIN_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let net = start("chain-outage", FAST).await;
    let load = Load::start(&net);
    net.until(
        "usage charged on chain",
        Duration::from_secs(20),
        OnChain(|w: &World| sample(w).tokens_charged > 0),
    )
    .await;
    let before = sample(&net.world());

    net.stop_chain();
    let down = Instant::now();
    tokio::time::sleep(outage).await;
    // Nothing settled while the chain was away, but requests kept being served.
    let during = sample(&net.world());
    let served_during = load.successes_started_after(down + Duration::from_secs(1));
    assert!(
        served_during >= 10,
        "serving continued through the outage: {served_during} requests"
    );
    // The outage was real: the proxy's chain calls failed.
    let stats = net.proxy_stats().await.expect("proxy stats");
    assert!(
        stats["payments"]["chain_errors"].as_u64().unwrap_or(0) > 0,
        "the proxy saw the chain fail: {}",
        stats["payments"]
    );
    net.restart_chain().await;
    let outcomes = load.finish().await;
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "no request failed because the chain was away: {} of {}, first {:?}",
        failed.len(),
        outcomes.len(),
        failed.first()
    );
    net.until("settlement caught up", Duration::from_secs(60), Settled)
        .await;
    let after = sample(&net.world());
    assert!(
        after.tokens_charged > during.tokens_charged.max(before.tokens_charged),
        "usage served during the outage was charged afterwards: {before:?} {during:?} {after:?}"
    );
    assert_eq!(after.tokens_paid, after.tokens_charged);
    eprintln!(
        "outage {:?}: {} requests served during it, {} in all; charged tokens {} before, {} after",
        outage,
        served_during,
        outcomes.len(),
        before.tokens_charged,
        after.tokens_charged
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_double_charges_nothing() {
    let t0 = Instant::now();
    let mut net = start("proxy-crash", PRODUCTION_SHAPE).await;
    let sampler = Sampler::start(net.chain.clone());
    let load = Load::start(&net);
    let load_started = Instant::now();

    // Under load until usage is anchored: the client holds a charge voucher.
    net.until(
        "a charge voucher for anchored usage",
        Duration::from_secs(20),
        HeldVoucher,
    )
    .await;
    assert!(load.successes_started_after(t0) > 0);

    // Kill at the most exposed moment a crash can hit, right after a fresh payment report
    // showed the client: usage the proxy held only in memory (in_memory > committed_db), a
    // DB batch not anchored yet (committed_db > committed_chain), and anchored usage signed
    // into its voucher but not charged on chain yet. If no such report comes within a few
    // seconds, kill anyway.
    let mut last = net.seen();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut exposed = false;
    while Instant::now() < deadline {
        let seen = net.seen();
        let charged = sample(&net.world()).tokens_charged;
        if seen != last
            && seen.in_memory > seen.committed_db
            && seen.committed_db > seen.committed_chain
            && seen.committed_chain > charged
        {
            exposed = true;
            break;
        }
        last = seen;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // What the proxy had reported committed to its DB before it died: never lost.
    let seen_at_kill = net.seen();
    let kill_sent = Instant::now();
    net.proxy.kill();
    let killed_at = Instant::now();
    let world_at_kill = sample(&net.world());

    // The client notices the link is gone; the proxy restarts on the same state directory
    // and the same ports.
    net.until(
        "the client dropped the dead proxy's link",
        Duration::from_secs(10),
        LinkCount(0),
    )
    .await;
    net.proxy.restart();
    let restarted_at = Instant::now();
    net.until(
        "the client reconnected to the restarted proxy",
        Duration::from_secs(20),
        LinkCount(1),
    )
    .await;
    let ready_at = Instant::now();
    // Keep the load going on the restarted proxy a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    while load.successes_started_after(ready_at) < 30 {
        if Instant::now() > deadline {
            panic!(
                "the restarted proxy did not serve the load\n{}",
                net.diagnostics().await
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outcomes = load.finish().await;
    let load_done = Instant::now();

    net.until(
        "everything settled: proxy books = charged = paid",
        Duration::from_secs(20),
        Settled,
    )
    .await;
    let settled_at = Instant::now();
    // Stable: nothing more is charged once settled (the idle settle came and went).
    tokio::time::sleep(Duration::from_millis(
        IDLE_SETTLE_MS + PRODUCTION_SHAPE.anchor_ms,
    ))
    .await;
    let world = net.world();
    let end = sample(&world);
    let samples = sampler.check_monotonic().await;
    assert!(Settled.check(&net).await, "settlement moved: {end:?}");

    // No counter went back: nobody refused the restarted proxy, and the chain's counters
    // never decreased (checked by the sampler). The restart reused the proxy contract.
    net.assert_no_refusal().await;
    assert_eq!(
        end.proxy_contracts, 1,
        "the restarted proxy kept its contract"
    );
    assert!(end.tokens_charged >= world_at_kill.tokens_charged);
    assert!(end.anchor_seqno > world_at_kill.anchor_seqno);

    let proxy = world.proxies.values().next().unwrap();
    let price = proxy.params.price_per_token;
    let client = Address::client_contract(&proxy.address, &Address::wallet(CLIENT_OWNER));
    let charged = world.clients[&client].tokens_charged * price;

    // Sums of `usage.total_cost` (nanoTON) the app was told.
    let cost_of = |o: &Outcome| *o.result.as_ref().unwrap_or(&0);
    let ok = |o: &&Outcome| o.result.is_ok();
    // Served by the killed proxy / by the restarted one (it was dead until `killed_at`).
    let before: u64 = outcomes
        .iter()
        .filter(ok)
        .filter(|o| o.started < killed_at)
        .map(cost_of)
        .sum();
    let after: u64 = outcomes
        .iter()
        .filter(ok)
        .filter(|o| o.started >= killed_at)
        .map(cost_of)
        .sum();
    // Requests cut by the kill. The proxy bills a request (in memory) just before it sends
    // the answer's end; if a DB batch caught that usage and the kill then beat the answer
    // to the app, the app saw a failure for a request that is (rightly) charged. At most
    // the requests in flight at the kill, each at the cost of its shape.
    let mut shape_cost: HashMap<usize, u64> = HashMap::new();
    for o in outcomes.iter().filter(ok) {
        let c = shape_cost.entry(o.shape).or_default();
        *c = (*c).max(cost_of(o));
    }
    let cut: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.result.is_err() && o.started < killed_at && o.ended >= kill_sent)
        .collect();
    let cut_cost: u64 = cut
        .iter()
        .map(|o| shape_cost.get(&o.shape).copied().unwrap_or(0))
        .sum();
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let mut errors: HashMap<String, usize> = HashMap::new();
    for o in &outcomes {
        if let Err(e) = &o.result {
            *errors.entry(e.chars().take(90).collect()).or_default() += 1;
        }
    }

    // Nothing charged twice: at most what the app was told it spent (plus the cut ones).
    assert!(
        charged <= before + after + cut_cost,
        "charged {charged} nanoTON, the app was told {before} + {after} (+ {cut_cost} for {} \
         requests cut by the kill)",
        cut.len()
    );
    // Nothing lost after the restart, nor anything the proxy had committed before the kill.
    // The designed loss window: usage the killed proxy held only in memory (at most about
    // one commit interval of it, plus the batch being written) is not charged; it never
    // reached the DB, so no voucher covers it and no peer can hold the proxy to it.
    let committed_before = seen_at_kill.committed_db * price;
    assert!(
        charged >= committed_before + after,
        "charged {charged} nanoTON < {committed_before} reported committed before the kill + \
         {after} served after the restart"
    );
    let lost = (before + after).saturating_sub(charged);
    // Workers are paid for exactly what the client was charged; coins are conserved.
    assert_eq!(end.tokens_paid, end.tokens_charged);
    world.check_invariants().unwrap();
    assert_eq!(world.clients[&client].state, ContractState::Open);

    eprintln!(
        "proxy crash: {} requests ({} ok, {failed} failed, {} cut by the kill); served \
         {before} + {after} nanoTON, charged {charged}, lost in the crash window {lost}; \
         at the kill (exposed: {exposed}) the client had seen {seen_at_kill:?}, the chain \
         {world_at_kill:?}; {samples} chain samples; failures: {errors:?}\n\
         timings: start {:?}, load until kill {:?}, client relinked {:?} after restart, \
         load after restart {:?}, settled {:?} after the load, total {:?}",
        outcomes.len(),
        outcomes.iter().filter(ok).count(),
        cut.len(),
        load_started - t0,
        killed_at - load_started,
        ready_at - restarted_at,
        load_done - ready_at,
        settled_at - load_done,
        t0.elapsed()
    );
}

/// The client holds a charge voucher of the proxy (for anchored usage).
struct HeldVoucher;

impl AsyncCheck for HeldVoucher {
    async fn check(&mut self, net: &Net) -> bool {
        net.client
            .payments()
            .first()
            .and_then(|v| v.voucher_cumulative)
            .is_some_and(|v| v > 0)
    }
}

/// The client has exactly this many ready proxy links.
struct LinkCount(usize);

impl AsyncCheck for LinkCount {
    async fn check(&mut self, net: &Net) -> bool {
        net.client.ready_proxies() == self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_copy_of_the_proxy_db_is_refused_at_start() {
    let t0 = Instant::now();
    let mut net = start("proxy-rollback", FAST).await;

    // Some paid usage, then quiescent and anchored: copy the state directory.
    let load = Load::start(&net);
    net.until(
        "usage anchored",
        Duration::from_secs(20),
        OnChain(|w: &World| sample(w).anchor_seqno > 0),
    )
    .await;
    load.finish().await;
    net.until("anchored and quiescent", Duration::from_secs(20), Quiescent)
        .await;
    let old = net.dir.join("old-state");
    copy_dir(&net.state_dir, &old);
    let old_anchor = sample(&net.world()).anchor_seqno;

    // More usage until a later batch is anchored; then kill the proxy (quiescent, so the
    // latest state is whole and restarting on it is clean).
    let load = Load::start(&net);
    net.until(
        "a later anchor",
        Duration::from_secs(20),
        OnChain(move |w: &World| sample(w).anchor_seqno > old_anchor),
    )
    .await;
    load.finish().await;
    net.until("anchored and quiescent", Duration::from_secs(20), Quiescent)
        .await;
    net.proxy.kill();
    let at_kill = sample(&net.world());
    assert!(at_kill.anchor_seqno > old_anchor);
    let latest = net.dir.join("latest-state");
    copy_dir(&net.state_dir, &latest);

    // The old copy: refused at start, with the reason, and nothing served.
    restore_dir(&old, &net.state_dir);
    let log_len = std::fs::metadata(&net.proxy.log).map_or(0, |m| m.len() as usize);
    net.proxy.restart();
    let status = net.proxy.exit_within(Duration::from_secs(20)).await;
    let log = std::fs::read_to_string(&net.proxy.log).unwrap_or_default();
    let output = log.get(log_len..).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "the proxy runs on a rolled-back DB\n{output}\n{}",
            net.diagnostics().await
        );
    };
    assert!(!status.success(), "exit status {status}: {output}");
    assert!(output.contains("rolled back"), "{output}");
    assert_eq!(net.client.ready_proxies(), 0, "the client got a link");
    let r = one_request(&net.http, &net.client_url, 1).await;
    assert!(r.is_err(), "a request was served: {r:?}");
    let now = sample(&net.world());
    assert_eq!(now, at_kill, "the refused proxy touched the chain");

    // The latest state starts and serves again, without any peer refusing it.
    restore_dir(&latest, &net.state_dir);
    net.proxy.restart();
    net.wait_serving(Duration::from_secs(20)).await;
    net.assert_no_refusal().await;
    net.world().check_invariants().unwrap();
    eprintln!(
        "proxy rollback: old anchor {old_anchor}, anchor at kill {}, refused with {status}; \
         total {:?}",
        at_kill.anchor_seqno,
        t0.elapsed()
    );
}

/// Both workers are connected to the proxy and enabled.
struct WorkersEnabled(usize);

impl AsyncCheck for WorkersEnabled {
    async fn check(&mut self, net: &Net) -> bool {
        net.proxy_stats().await.is_some_and(|s| {
            s["workers"]
                .as_array()
                .is_some_and(|w| w.iter().filter(|w| w["enabled"] == true).count() == self.0)
        })
    }
}

/// Adjusted tokens the proxy owes each worker owner (its in-memory counter).
async fn earned_by_owner(net: &Net) -> HashMap<String, u64> {
    let stats = net.proxy_stats().await.expect("proxy stats");
    stats["payments"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["owner"].as_str().unwrap().to_string(),
                w["counters"]["in_memory"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// DESIGN §4 failure paths, issue 6: a worker SIGKILLed while it streams an answer. The proxy
/// continues the answer on the other worker from what the app has; the app's stream is the
/// uninterrupted answer, byte for byte in its text, with one usage event; the killed worker
/// is paid for the tokens it delivered, the other for the rest (its prompt included), and
/// the client is charged exactly the sum. Reports the stall the app saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_is_replaced_without_the_app_noticing() {
    const CHUNKS: u64 = 40;
    let engine = TestEngineConfig {
        models: vec![MODEL.into()],
        chunks: CHUNKS as u32,
        chunk_size: 4,
        chunk_delay: Duration::from_millis(50),
    };
    let mut net = start_with("worker-kill", FAST, 2, engine.clone(), "").await;
    net.until(
        "both workers serve",
        Duration::from_secs(30),
        WorkersEnabled(2),
    )
    .await;
    let messages = json!([{"role": "user", "content": "tell me a long story"}]);
    // The uninterrupted answer, from an engine of the same kind that nobody kills.
    let (_reference, reference_url) = common::spawn_test_engine(engine, &net.shutdown).await;
    let whole: Value = net
        .http
        .post(format!("{reference_url}/chat/completions"))
        .json(&json!({"model": MODEL, "messages": messages}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = whole["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    net.until("earlier requests settled", Duration::from_secs(30), Settled)
        .await;
    let before = earned_by_owner(&net).await;

    let res = net
        .http
        .post(&net.client_url)
        .json(&json!({"model": MODEL, "messages": messages, "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let (mut pending, mut text, mut usage) = (String::new(), String::new(), Value::Null);
    let (mut arrivals, mut done, mut killed) = (Vec::new(), false, None);
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        pending
            .push_str(std::str::from_utf8(&chunk.expect("the app's stream never breaks")).unwrap());
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            let data = event.trim().strip_prefix("data:").unwrap().trim();
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
            assert!(v["error"].is_null(), "no error event: {v}");
            if let Some(piece) = v["choices"][0]["delta"]["content"]
                .as_str()
                .filter(|p| !p.is_empty())
            {
                text.push_str(piece);
                arrivals.push(Instant::now());
            }
            if v["usage"].is_object() {
                assert!(usage.is_null(), "one usage event");
                usage = v["usage"].clone();
            }
        }
        if arrivals.len() == 10 && killed.is_none() {
            // Kill whichever worker is streaming this answer.
            let mut urls = vec![(0, net.worker_stats_url.clone())];
            urls.extend(
                net.more_workers
                    .iter()
                    .enumerate()
                    .map(|(i, (_, u))| (i + 1, u.clone())),
            );
            let mut busy = None;
            for (i, url) in urls {
                if net
                    .json(&url)
                    .await
                    .is_some_and(|s| s["active_requests"].as_u64() > Some(0))
                {
                    busy = Some(i);
                }
            }
            let i = busy.expect("one worker is streaming the answer");
            match i {
                0 => net.worker.kill(),
                i => net.more_workers[i - 1].0.kill(),
            }
            killed = Some(i);
        }
    }
    assert!(done, "the stream ended with [DONE]");
    assert!(killed.is_some());
    assert_eq!(text, expected, "the app got the uninterrupted answer");
    assert_eq!(usage["completion_tokens"], CHUNKS, "{usage}");
    let stats = net.proxy_stats().await.unwrap();
    assert_eq!(stats["stats"]["failovers"], 1, "{}", stats["stats"]);
    let gap = arrivals.windows(2).map(|w| w[1] - w[0]).max().unwrap();

    // Billing: each worker for what it delivered; the client for both.
    net.until(
        "failed-over answer settled",
        Duration::from_secs(30),
        Settled,
    )
    .await;
    let after = earned_by_owner(&net).await;
    let owner = |i: usize| match i {
        0 => Address::wallet(WORKER_OWNER).to_hex(),
        i => Address::wallet(&format!("{WORKER_OWNER}-{i}")).to_hex(),
    };
    let dead = owner(killed.unwrap());
    let alive = owner(1 - killed.unwrap());
    let earned = |o: &str| after.get(o).copied().unwrap_or(0) - before.get(o).copied().unwrap_or(0);
    let params = net.chain.registry().params.clone();
    let adjusted = |prompt, cached, completion, reasoning| {
        let counts = cocoon_chain::ledger::TokenCounts {
            prompt,
            cached,
            completion,
            reasoning,
        };
        params.charge(counts, 1000).adjusted_tokens()
    };
    // The killed worker reported nothing: it is paid for the content events it delivered.
    let delivered = (1..CHUNKS)
        .find(|k| adjusted(0, 0, *k, 0) == earned(&dead))
        .unwrap_or_else(|| {
            panic!(
                "the killed worker earned {} for whole tokens",
                earned(&dead)
            )
        });
    assert!(
        delivered >= 10,
        "it delivered at least what the app saw before the kill"
    );
    let u = |k: &str| usage[k].as_u64().unwrap();
    let reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap_or(0);
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        earned(&alive),
        adjusted(u("prompt_tokens"), cached, CHUNKS - delivered, reasoning),
        "the other worker is paid for its own usage: {usage}"
    );
    assert_eq!(
        u("total_cost"),
        (earned(&dead) + earned(&alive)) * params.price_per_token,
        "the app's cost is what both workers were paid"
    );
    eprintln!(
        "failover: worker {} killed after {} of {CHUNKS} tokens reached the app ({} delivered); \
         longest stall the app saw {} ms (tokens every 50 ms otherwise)",
        killed.unwrap(),
        10,
        delivered,
        gap.as_millis()
    );
}

/// A process's resident memory now and at its peak (VmRSS, VmHWM), in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Issue 6 load: 2,000 streaming requests at once (`LOAD_STREAMS` overrides) through one
/// proxy process to two worker processes; every answer arrives whole, and the proxy's peak
/// resident memory is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_streams_through_one_proxy() {
    let streams: usize = std::env::var("LOAD_STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    const CHUNKS: u32 = 10;
    // Long enough answers (10 s) that every request is in flight at once.
    let engine = TestEngineConfig {
        models: vec![MODEL.into()],
        chunks: CHUNKS,
        chunk_size: 4,
        chunk_delay: Duration::from_secs(1),
    };
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files"));
    eprintln!("{}", open_files.unwrap_or("open files limit unknown"));
    let net = start_with(
        "load",
        FAST,
        2,
        engine,
        &format!("max_active_requests = {streams}\n"),
    )
    .await;
    net.until(
        "both workers serve",
        Duration::from_secs(30),
        WorkersEnabled(2),
    )
    .await;
    let proxy_pid = net.proxy.child.id();
    let (idle_rss, _) = rss_kib(proxy_pid);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(streams)
        .build()
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let (http, url) = (http.clone(), net.client_url.clone());
            tokio::spawn(async move {
                let body = json!({"model": MODEL, "stream": true,
                    "messages": [{"role": "user", "content": format!("load {i}")}]});
                let res = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = res.status();
                let text = res.text().await.map_err(|e| e.to_string())?;
                let events = common::sse_events(&text);
                let content: String = events
                    .iter()
                    .filter_map(|e| serde_json::from_str::<Value>(e).ok())
                    .filter_map(|v| {
                        v["choices"][0]["delta"]["content"]
                            .as_str()
                            .map(String::from)
                    })
                    .collect();
                if status != 200
                    || events.last().map(String::as_str) != Some("[DONE]")
                    || content.len() != 4 * CHUNKS as usize
                {
                    return Err(format!("{status}: {text}"));
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    // Watch the proxy while the load runs: requests in flight, memory.
    let (mut peak_in_flight, mut peak_rss) = (0u64, 0u64);
    while tasks.iter().any(|t| !t.is_finished()) {
        if let Some(s) = net.proxy_stats().await {
            peak_in_flight = peak_in_flight.max(s["stats"]["in_flight"].as_u64().unwrap_or(0));
        }
        peak_rss = peak_rss.max(rss_kib(proxy_pid).0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {streams} streams failed; first: {:?}",
        failures.len(),
        failures.first()
    );
    let (_, hwm) = rss_kib(proxy_pid);
    assert!(
        peak_in_flight as usize > streams / 2,
        "the requests really were concurrent: at most {peak_in_flight} in flight"
    );
    net.until("load settled", Duration::from_secs(60), Settled)
        .await;
    eprintln!(
        "load: {streams} concurrent streams of {CHUNKS} tokens (1 token/s) all completed in {:.1} s; \
         at most {peak_in_flight} in flight at the proxy; proxy RSS {:.1} MiB idle, peak {:.1} MiB \
         (VmHWM {:.1} MiB)",
        elapsed.as_secs_f64(),
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
}
