//! Operator actions (issue 7): the worker's authenticated `/admin/…` endpoints and the
//! `cocoon worker …` / `cocoon proxy status` commands against a running devnet.

mod common;

use cocoon_chain::Chain;
use cocoon_devnet::DevnetConfig;
use cocoon_engine::test_engine::TestEngineConfig;
use common::{eventually, Net};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const TOKEN: &str = "operator-test-token-0123456789";

fn engine() -> TestEngineConfig {
    TestEngineConfig {
        models: vec!["test-model".into()],
        chunks: 3,
        chunk_size: 8,
        chunk_delay: Duration::ZERO,
    }
}

async fn devnet_with_token(token: Option<&str>) -> Net {
    let mut config = DevnetConfig::for_tests(1, engine());
    config.worker_admin_token = token.map(str::to_string);
    common::start(config).await
}

fn worker_url(net: &Net) -> String {
    format!(
        "http://{}",
        net.devnet.workers[0].http_addr.expect("worker http")
    )
}

async fn admin(
    net: &Net,
    base: &str,
    action: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = net.http.post(format!("{base}/admin/{action}")).json(&body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("admin call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn chat_status(net: &Net) -> u16 {
    net.post("/v1/chat/completions", &net.chat_body(false))
        .await
        .status()
        .as_u16()
}

async fn min_coefficient(net: &Net) -> Value {
    let models: Value = net
        .http
        .get(net.url("/v1/models"))
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("models JSON");
    models["data"][0]["min_coefficient"].clone()
}

#[tokio::test]
async fn admin_endpoints_switch_a_worker_and_its_price() {
    let net = devnet_with_token(Some(TOKEN)).await;
    let url = worker_url(&net);
    assert_eq!(chat_status(&net).await, 200);

    // Without the right token nothing changes.
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let (status, body) = admin(&net, &url, "disable", token, json!({})).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("admin token"),
            "{body}"
        );
    }
    let (status, _) = admin(&net, &url, "coefficient", None, json!({"coefficient": 5})).await;
    assert_eq!(status, 401);
    let (status, _) = admin(&net, &url, "payout", Some("nope-nope-nope-nope"), json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(net.devnet.proxy.enabled_worker_count(), 1);
    // Read-only pages stay open.
    let stats: Value = net
        .http
        .get(format!("{url}/jsonstats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["admin_endpoints"], true);
    assert_eq!(stats["operator_disabled"], false);

    // Disable: the proxy stops routing to it; the engine probe does not undo it.
    let (status, body) = admin(&net, &url, "disable", Some(TOKEN), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["operator_disabled"], true);
    assert!(
        eventually(Duration::from_secs(5), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 0)
        .await,
        "the proxy still sees the worker enabled"
    );
    assert_eq!(chat_status(&net).await, 503);
    // Several engine probes (every 200 ms) later it is still off.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(net.devnet.proxy.enabled_worker_count(), 0);
    assert!(!net.devnet.workers[0].is_enabled());
    let health = net.http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "disabled_by_operator");

    // Enable: served again.
    let (status, body) = admin(&net, &url, "enable", Some(TOKEN), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    assert!(
        eventually(Duration::from_secs(5), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 1)
        .await
    );
    assert_eq!(chat_status(&net).await, 200);

    // Coefficient: bounds-checked, then visible in the client's /v1/models.
    for bad in [
        json!({"coefficient": 0}),
        json!({"coefficient": 1_000_001}),
        json!({"coefficient": "9"}),
        json!({}),
    ] {
        let (status, body) = admin(&net, &url, "coefficient", Some(TOKEN), bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, body) = admin(
        &net,
        &url,
        "coefficient",
        Some(TOKEN),
        json!({"coefficient": 1700}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["coefficient"].clone(), body["previous"].clone()),
        (json!(1700), json!(1000))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let c = min_coefficient(&net).await;
        if c == 1700 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "models still show {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Payout: once the proxy has reported a voucher, "pay me now" says per proxy what it did.
    assert_eq!(chat_status(&net).await, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let proxies = loop {
        let (status, body) = admin(&net, &url, "payout", Some(TOKEN), json!({})).await;
        assert_eq!(status, 200, "{body}");
        let proxies = body["proxies"].as_array().cloned().unwrap_or_default();
        if proxies
            .iter()
            .any(|p| p["voucher_tokens"].as_u64() > Some(0))
        {
            break proxies;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no voucher held: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(proxies.len(), 1);
    let result = proxies[0]["result"].as_str().unwrap();
    assert!(
        ["submitted", "nothing_unpaid", "already_paid"].contains(&result),
        "{proxies:?}"
    );
    // Right after, the contract is paid up to the voucher.
    let (_, body) = admin(&net, &url, "payout", Some(TOKEN), json!({})).await;
    let p = &body["proxies"][0];
    assert!(
        p["unpaid_tokens"] == 0
            || p["voucher_tokens"].as_u64() > proxies[0]["voucher_tokens"].as_u64(),
        "{body}"
    );
}

#[tokio::test]
async fn admin_endpoints_are_off_without_a_token() {
    let net = devnet_with_token(None).await;
    let url = worker_url(&net);
    for action in ["enable", "disable", "coefficient", "payout"] {
        for token in [None, Some(TOKEN)] {
            let (status, body) =
                admin(&net, &url, action, token, json!({"coefficient": 1200})).await;
            assert_eq!(status, 403, "{action} {token:?}: {body}");
            assert_eq!(body["error"], "admin endpoints are off: set admin_token");
        }
    }
    assert_eq!(net.devnet.proxy.enabled_worker_count(), 1);
    let stats: Value = net
        .http
        .get(format!("{url}/jsonstats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["admin_endpoints"], false);
    assert_eq!(stats["coefficient"], 1000);
}

// ---------------------------------------------------------------------------------------
// The command line.

/// Runs the built `cocoon` binary to completion (off the async runtime).
async fn cocoon(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cocoon"));
    cmd.args(args)
        .env_remove("COCOON_ADMIN_TOKEN")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run cocoon"))
        .await
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `cocoon ARGS`, asserts it succeeded, returns its stdout.
async fn cocoon_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let o = cocoon(args, env).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "cocoon {args:?} failed:\n{out}\n{err}");
    out
}

/// A worker process killed when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cocoon-operator-cli-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free loopback port below the ephemeral range (see `processes.rs`).
fn free_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (0..12_000u32)
        .map(|i| 20_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 12_000) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port")
}

#[tokio::test]
async fn cli_status_disable_enable_and_init() {
    let net = devnet_with_token(Some(TOKEN)).await;
    let url = worker_url(&net);
    let proxy_url = format!("http://{}", net.devnet.proxy.http_addr.expect("proxy http"));
    assert_eq!(chat_status(&net).await, 200);

    let status = cocoon_ok(&["worker", "status", "--url", &url], &[]).await;
    for needle in [
        "worker-0",
        "ENABLED",
        "test-model@dev:unverified",
        "1000 (×1.000",
        "admin        on",
    ] {
        assert!(status.contains(needle), "{needle:?} in\n{status}");
    }
    let raw: Value =
        serde_json::from_str(&cocoon_ok(&["worker", "status", "--url", &url, "--json"], &[]).await)
            .expect("--json prints JSON");
    assert_eq!(raw["role"], "worker");

    // The client's view: requests, spend, and its contract at the proxy.
    let client_url = net.url("");
    let status = cocoon_ok(&["client", "status", "--url", &client_url], &[]).await;
    for needle in ["client-0", "1 ok", "spent", "balance", "open"] {
        assert!(status.contains(needle), "{needle:?} in\n{status}");
    }

    // Disable with --token, enable with the environment variable.
    let o = cocoon(&["worker", "disable", "--url", &url], &[]).await;
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--token"), "{:?}", text(&o));
    let o = cocoon(
        &[
            "worker",
            "disable",
            "--url",
            &url,
            "--token",
            "wrong-wrong-wrong",
        ],
        &[],
    )
    .await;
    assert!(!o.status.success());
    assert!(text(&o).1.contains("401"), "{:?}", text(&o));
    assert_eq!(net.devnet.proxy.enabled_worker_count(), 1);
    let out = cocoon_ok(&["worker", "disable", "--url", &url, "--token", TOKEN], &[]).await;
    assert!(out.contains("worker disabled"), "{out}");
    assert!(
        eventually(Duration::from_secs(5), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 0)
        .await
    );
    assert_eq!(chat_status(&net).await, 503);
    let status = cocoon_ok(&["worker", "status", "--url", &url], &[]).await;
    assert!(status.contains("DISABLED by the operator"), "{status}");
    let proxy_status = cocoon_ok(&["proxy", "status", "--url", &proxy_url], &[]).await;
    for needle in [
        "proxy-0",
        "1 connected, 0 enabled",
        "worker-0",
        "disabled",
        "anchored seqno",
    ] {
        assert!(
            proxy_status.contains(needle),
            "{needle:?} in\n{proxy_status}"
        );
    }
    let env = [("COCOON_ADMIN_TOKEN", TOKEN)];
    let out = cocoon_ok(&["worker", "enable", "--url", &url], &env).await;
    assert!(out.contains("worker enabled"), "{out}");
    assert!(
        eventually(Duration::from_secs(5), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 1)
        .await
    );
    let out = cocoon_ok(&["worker", "set-coefficient", "1300", "--url", &url], &env).await;
    assert!(out.contains("1000 → 1300"), "{out}");
    let o = cocoon(&["worker", "set-coefficient", "0", "--url", &url], &env).await;
    assert!(
        !o.status.success() && text(&o).1.contains("coefficient must be"),
        "{:?}",
        text(&o)
    );
    let out = cocoon_ok(&["worker", "payout", "--url", &url], &env).await;
    assert!(
        out.contains("payout(s) submitted") || out.contains("no payout vouchers"),
        "{out}"
    );

    // Unreachable nodes and wrong roles are one clear line.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let o = cocoon(&["worker", "status", "--url", &dead], &[]).await;
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(
        err.contains("cannot reach the worker") && err.trim().lines().count() == 1,
        "{err}"
    );
    let o = cocoon(&["worker", "status", "--url", &proxy_url], &[]).await;
    assert!(
        !o.status.success() && text(&o).1.contains("not a worker"),
        "{:?}",
        text(&o)
    );

    // `worker init` writes a config a worker process runs on: it joins the devnet's proxy.
    let dir = temp_dir();
    let registry = dir.join("registry.json");
    cocoon_chain::LocalChain::write_file(&registry, &net.devnet.chain.registry()).unwrap();
    let config = dir.join("worker.toml");
    let http_port = free_port();
    let engine_url = {
        let (_engine, url) = common::spawn_test_engine(engine(), &net.shutdown).await;
        url
    };
    let proxy_worker = net.devnet.proxy.worker_addr.to_string();
    let http_listen = format!("127.0.0.1:{http_port}");
    let init_args = [
        "worker",
        "init",
        "--out",
        config.to_str().unwrap(),
        "--registry",
        "registry.json",
        "--proxy",
        &proxy_worker,
        "--engine-url",
        &engine_url,
        "--name",
        "cli-worker",
        "--owner",
        "cli-worker-owner",
        "--http-listen",
        &http_listen,
    ];
    let out = cocoon_ok(&init_args, &[]).await;
    assert!(out.contains("wrote"), "{out}");
    let o = cocoon(&init_args, &[]).await;
    assert!(
        !o.status.success() && text(&o).1.contains("already exists"),
        "{:?}",
        text(&o)
    );
    let written: toml::Value =
        toml::from_str(&std::fs::read_to_string(&config).unwrap()).expect("TOML");
    let token = written["admin_token"]
        .as_str()
        .expect("admin_token")
        .to_string();
    let _worker = Proc(
        Command::new(env!("CARGO_BIN_EXE_cocoon"))
            .args(["worker", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the worker"),
    );
    assert!(
        eventually(Duration::from_secs(20), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 2)
        .await,
        "the worker from `cocoon worker init` did not join"
    );
    let cli_url = format!("http://{http_listen}");
    let status = cocoon_ok(&["worker", "status", "--url", &cli_url], &[]).await;
    assert!(
        status.contains("cli-worker") && status.contains("ENABLED"),
        "{status}"
    );
    cocoon_ok(
        &["worker", "disable", "--url", &cli_url, "--token", &token],
        &[],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || net
            .devnet
            .proxy
            .enabled_worker_count()
            == 1)
        .await
    );
    std::fs::remove_dir_all(dir).ok();
}
