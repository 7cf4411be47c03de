//! The web dashboard at `/` of every node, rendered by headless Chromium (Debian's
//! `chromium`, installed by scripts/setup.sh): the page's script must fetch `/jsonstats` and
//! draw the node's state — no external resources, so it works offline — and a screenshot of
//! each page is taken (kept under target/dashboard-*.png for people to look at).

mod common;

use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless Chromium on `url` with `extra` flags and a fresh profile; returns stdout.
fn chromium(url: &str, extra: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)"
    );
    let profile = std::env::temp_dir().join(format!(
        "cocoon-chromium-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=4000",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    std::fs::remove_dir_all(&profile).ok();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn screenshot(url: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("dashboard-{name}.png"));
    std::fs::remove_file(&path).ok();
    chromium(url, &[format!("--screenshot={}", path.display())]);
    let png = std::fs::read(&path).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a rendered page, not a blank one: {} bytes",
        png.len()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_a_dashboard_that_renders_its_state() {
    let net = start_simple(1, TestEngineConfig::default()).await;
    for _ in 0..3 {
        let res = net
            .post("/v1/chat/completions", &net.chat_body(false))
            .await;
        assert_eq!(res.status(), 200);
    }
    let client = net.url("/");
    let proxy = format!("http://{}/", net.devnet.proxy.http_addr.unwrap());
    let worker = format!("http://{}/", net.devnet.workers[0].http_addr.unwrap());
    // The page itself: HTML, no external resources.
    let html = net
        .http
        .get(&proxy)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(external), "self-contained, found {external}");
    }

    for (url, name, expect) in [
        (
            &client,
            "client",
            vec!["Proxies", "succeeded", "TON", "healthy", "test-model"],
        ),
        (
            &proxy,
            "proxy",
            vec![
                "Workers",
                "worker-0",
                "test-model",
                "CPU (",
                "enabled",
                "Worker earnings",
            ],
        ),
        (
            &worker,
            "worker",
            vec!["Earnings", "healthy", "test-model", "Payouts"],
        ),
    ] {
        let page = url.clone();
        let dom = tokio::task::spawn_blocking(move || chromium(&page, &["--dump-dom".into()]))
            .await
            .unwrap();
        assert!(
            dom.contains("data-ready=\"1\""),
            "{name}: the script rendered /jsonstats: {dom}"
        );
        for text in expect {
            assert!(dom.contains(text), "{name} dashboard shows {text:?}: {dom}");
        }
        let url = url.clone();
        let shot = tokio::task::spawn_blocking(move || screenshot(&url, name))
            .await
            .unwrap();
        eprintln!("{name} dashboard screenshot: {}", shot.display());
    }
}
