//! `cocoon chain deploy-root` as an operator runs it: the address it prints is the one the
//! adapter derives from the embedded contract code, and against a TON HTTP API (a local
//! server answering like toncenter) it asks with the API key and sends nothing when the root
//! is already active.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::routing::any;
use axum::Router;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// An API method called, with the API key it carried.
type Asked = (String, Option<String>);

fn seed_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("seed.hex");
    std::fs::write(&path, format!("{}\n", "07".repeat(32))).unwrap();
    path
}

fn expected_root() -> String {
    use cocoon_ton::wallet::{NodeWallet, WalletVersion};
    let wallet = NodeWallet::from_seed(&[7; 32], WalletVersion::V4R2).unwrap();
    let params =
        cocoon_ton::messages::Params::try_from(&cocoon_chain::ledger::RootParams::default())
            .unwrap();
    let codes = cocoon_ton::deploy::Codes::embedded().unwrap();
    let (_, address) =
        cocoon_ton::deploy::root_state_init(wallet.address(), &params, &codes).unwrap();
    address.to_hex()
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dry_run_prints_the_roots_address() {
    let dir = tempdir("ton-cli-dry");
    let seed = seed_file(&dir);
    let (ok, out, err) = run(&[
        "chain",
        "deploy-root",
        "--dry-run",
        "--wallet-seed-file",
        seed.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("raw {}", expected_root())), "{out}");
    assert!(
        out.contains("deployer wallet: 0Q"),
        "testnet, non-bounceable: {out}"
    );
    // A malformed seed file is refused clearly.
    std::fs::write(&seed, "not hex").unwrap();
    let (ok, _, err) = run(&[
        "chain",
        "deploy-root",
        "--dry-run",
        "--wallet-seed-file",
        seed.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("64 hex characters"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_root_is_reported_and_nothing_is_sent() {
    let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
    let log = asked.clone();
    let app = Router::new().route(
        "/api/v2/{method}",
        any(move |Path(method): Path<String>, headers: HeaderMap| {
            let log = log.clone();
            async move {
                let key = headers
                    .get("x-api-key")
                    .map(|v| v.to_str().unwrap().to_string());
                log.lock().unwrap().push((method, key));
                r#"{"ok":true,"result":{"balance":"1000","code":"","data":"","state":"active"}}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempdir("ton-cli-active");
    let seed = seed_file(&dir);
    let args = [
        "chain".to_string(),
        "deploy-root".into(),
        "--api-url".into(),
        url,
        "--api-key".into(),
        "k-123".into(),
        "--wallet-seed-file".into(),
        seed.to_str().unwrap().into(),
    ];
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("already active"), "{out}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![(
            "getAddressInformation".to_string(),
            Some("k-123".to_string())
        )]
    );
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cocoon-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
