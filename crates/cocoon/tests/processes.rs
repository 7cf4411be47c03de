//! Failure behaviour with real processes: the proxy and a worker run as `cocoon` child
//! processes and are killed with SIGKILL (or frozen with SIGSTOP) mid-request.

mod common;

use cocoon_chain::{LocalChain, ProxyEntry};
use cocoon_engine::test_engine::{TestEngine, TestEngineConfig};
use common::free_port;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const MODEL: &str = "test-model";
const MODEL_ID: &str = "test-model@dev:unverified";

/// A child process killed when the test ends, pass or fail.
struct Proc {
    child: Child,
    args: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_cocoon"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cocoon");
        Proc {
            child,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn kill(&mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        *self = Proc::spawn(&args);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    dir: PathBuf,
    proxy: Proc,
    worker: Proc,
    client_url: String,
    engine: TestEngine,
    shutdown: CancellationToken,
    _client: cocoon_client::RunningClient,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Engine and client in this process; proxy and worker as child processes.
async fn cluster(link: &str) -> Cluster {
    common::init_tracing();
    let dir = std::env::temp_dir().join(format!(
        "cocoon-proc-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let shutdown = CancellationToken::new();
    let engine = TestEngine::new(TestEngineConfig {
        models: vec![MODEL.into()],
        chunks: 40,
        chunk_size: 16,
        chunk_delay: Duration::from_millis(100),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let engine_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(engine.clone().serve(listener, shutdown.clone()));

    let (client_port, worker_port, http_port) = (free_port(), free_port(), free_port());
    let worker_http_port = free_port();
    let mut registry = cocoon_devnet::dev_registry(MODEL_ID, 4);
    registry.proxies.push(ProxyEntry {
        name: "proxy-0".into(),
        client_endpoint: format!("127.0.0.1:{client_port}"),
        worker_endpoint: format!("127.0.0.1:{worker_port}"),
    });
    let registry_path = dir.join("registry.json");
    LocalChain::write_file(&registry_path, &registry).unwrap();
    write(
        &dir.join("proxy.toml"),
        &format!(
            "name = \"proxy-0\"\nowner_address = \"p\"\nregistry = \"registry.json\"\n\
             client_listen = \"127.0.0.1:{client_port}\"\nworker_listen = \"127.0.0.1:{worker_port}\"\n\
             http_listen = \"127.0.0.1:{http_port}\"\n{link}"
        ),
    );
    write(
        &dir.join("worker.toml"),
        &format!(
            "name = \"worker-0\"\nowner_address = \"w\"\nregistry = \"registry.json\"\nmodel_id = \"{MODEL_ID}\"\n\
             engine_url = \"{engine_url}\"\nhttp_listen = \"127.0.0.1:{worker_http_port}\"\n{link}"
        ),
    );
    let proxy = Proc::spawn(&[
        "proxy",
        "--config",
        dir.join("proxy.toml").to_str().unwrap(),
    ]);
    let worker = Proc::spawn(&[
        "worker",
        "--config",
        dir.join("worker.toml").to_str().unwrap(),
    ]);
    let chain = LocalChain::open(&registry_path).unwrap();
    let client = cocoon_client::start(
        cocoon_client::ClientConfig {
            api_keys: Vec::new(),
            payments: None,
            name: "client".into(),
            owner_address: "c".into(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            proxies: Vec::new(),
            max_pow_difficulty: 28,
            tdx_verifier: None,
            reconnect_interval: Duration::from_millis(100),
            timing: Default::default(),
            defaults: Default::default(),
            chain,
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let client_url = format!("http://{}", client.http_addr);
    let c = Cluster {
        dir,
        proxy,
        worker,
        client_url,
        engine,
        shutdown,
        _client: client,
    };
    c.wait_serving(Duration::from_secs(30)).await;
    c
}

impl Cluster {
    /// Polls until a small request succeeds end to end.
    async fn wait_serving(&self, limit: Duration) {
        let start = Instant::now();
        let http = reqwest::Client::new();
        loop {
            let body = serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1});
            if let Ok(r) = http
                .post(format!("{}/v1/chat/completions", self.client_url))
                .json(&body)
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                start.elapsed() < limit,
                "network did not start serving within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts a long streaming request and returns its body stream after the first chunk.
    async fn stream_started(&self) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> {
        let body = serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "tell me a story"}], "stream": true});
        let res = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.client_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut stream = res.bytes_stream();
        let first = stream.next().await.expect("first chunk").unwrap();
        assert!(first.starts_with(b"data: "));
        stream
    }
}

/// Reads the rest of a stream; returns the text and how long it took to end.
async fn drain(
    mut stream: impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
) -> (String, Duration) {
    let start = Instant::now();
    let mut text = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.extend_from_slice(&chunk);
    }
    (String::from_utf8_lossy(&text).into_owned(), start.elapsed())
}

fn assert_error_event(text: &str) {
    let last = common::sse_events(text).pop().expect("some event");
    let v: serde_json::Value = serde_json::from_str(&last).expect("last event is JSON");
    assert!(
        v["error"]["message"].is_string(),
        "last event is an error: {last}"
    );
    assert!(
        !text.contains("[DONE]"),
        "a failed stream does not claim completion"
    );
}

#[tokio::test]
async fn worker_killed_mid_stream_ends_the_stream_with_an_error_at_once() {
    let mut c = cluster("").await;
    let stream = Box::pin(c.stream_started().await);
    tokio::time::sleep(Duration::from_millis(250)).await;
    c.worker.kill();
    let (text, took) = drain(stream).await;
    assert_error_event(&text);
    assert!(
        took < Duration::from_secs(1),
        "stream ended {took:?} after the kill"
    );
}

#[tokio::test]
async fn proxy_killed_fails_requests_at_once_and_client_reconnects() {
    let mut c = cluster("").await;
    let stream = Box::pin(c.stream_started().await);
    c.proxy.kill();
    let (text, took) = drain(stream).await;
    assert_error_event(&text);
    assert!(
        took < Duration::from_secs(1),
        "stream ended {took:?} after the kill"
    );
    c.proxy.restart();
    c.wait_serving(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn silent_worker_link_is_closed_by_keepalive() {
    let link = "[link]\nkeepalive_interval_ms = 300\nkeepalive_timeout_ms = 700\n";
    let c = cluster(link).await;
    let stream = Box::pin(c.stream_started().await);
    // A frozen worker keeps its TCP connection open but answers nothing.
    c.worker.signal("-STOP");
    let (text, took) = drain(stream).await;
    c.worker.signal("-CONT");
    assert_error_event(&text);
    assert!(
        took < Duration::from_secs(5),
        "silent link detected after {took:?}"
    );
    assert!(c.engine.stats().requests_started >= 1);
}

#[test]
fn worker_refuses_to_start_with_wrong_weights() {
    let dir = std::env::temp_dir().join(format!(
        "cocoon-weights-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir.join("model.gguf"),
        "not the weights you are looking for",
    );
    LocalChain::write_file(
        &dir.join("registry.json"),
        &cocoon_devnet::dev_registry(MODEL_ID, 4),
    )
    .unwrap();
    let expected = "ab".repeat(32);
    write(
        &dir.join("worker.toml"),
        &format!(
            "name = \"w\"\nowner_address = \"w\"\nregistry = \"registry.json\"\nmodel_id = \"m@r1:{expected}\"\n\
             engine_url = \"http://127.0.0.1:9/v1\"\nweights = \"model.gguf\"\nhttp_listen = \"127.0.0.1:0\"\n\
             proxies = [\"127.0.0.1:9\"]\n"
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args([
            "worker",
            "--config",
            dir.join("worker.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "worker must refuse to start");
    assert!(
        stderr.contains(&expected),
        "names the expected hash: {stderr}"
    );
    let actual = cocoon_worker::hash_weights_file(&dir.join("model.gguf")).unwrap();
    assert!(stderr.contains(&actual), "names the actual hash: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
