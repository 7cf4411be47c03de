//! `cocoon chain deploy-root` as an operator runs it: the address it prints is the one the
//! adapter derives from the embedded contract code, and against a TON HTTP API (a local
//! server answering like toncenter) it asks with the API key and sends nothing when the root
//! is already active. `cocoon chain root …` governs a root on a local TON network (the Tolk
//! contracts in @ton/sandbox behind the toncenter v2 API).

#[path = "../../ton/tests/sandbox/mod.rs"]
mod sandbox;

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
        .env_remove("TON_API_KEY")
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

#[test]
fn an_operator_governs_the_root_from_the_command_line() {
    let sb = sandbox::Sandbox::start();
    let dir = std::env::temp_dir().join(format!("cocoon-root-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("operator.seed");
    std::fs::write(&seed, "0b".repeat(32)).unwrap();
    let other = dir.join("other.seed");
    std::fs::write(&other, "0c".repeat(32)).unwrap();
    let wallet = cocoon_ton::wallet::NodeWallet::from_seed(
        &[0x0b; 32],
        cocoon_ton::wallet::WalletVersion::V4R2,
    )
    .unwrap();
    sb.fund(&wallet.address().to_hex(), 10_000_000_000);
    let seed = seed.to_str().unwrap();
    let api = sb.api.as_str();

    let (ok, out, err) = run(&[
        "chain",
        "deploy-root",
        "--requests-per-second",
        "1000",
        "--api-url",
        api,
        "--wallet-seed-file",
        seed,
    ]);
    assert!(ok, "{out}{err}");
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("root address: "))
        .and_then(|l| l.split(' ').next())
        .expect("the root's address")
        .to_string();
    let admin = |action: &[&str], seed: &str| {
        let mut args = vec![
            "chain",
            "root",
            "--requests-per-second",
            "1000",
            "--api-url",
            api,
            "--wallet-seed-file",
            seed,
            "--root",
            &root,
        ];
        args.extend_from_slice(action);
        run(&args)
    };
    let model = "qwen@main:abcd";
    for action in [
        vec!["add-model", model],
        vec!["add-image", "worker", &"aa".repeat(32)],
        vec![
            "register-proxy",
            &root,
            "proxy.example:9000",
            "proxy.example:9001",
        ],
    ] {
        let (ok, out, err) = admin(&action, seed);
        assert!(ok, "{action:?}: {out}{err}");
        assert!(out.contains("done: root version"), "{out}");
    }
    // Another wallet is refused before anything is sent.
    let (ok, _, err) = admin(&["add-model", "other@x:y"], other.to_str().unwrap());
    assert!(!ok);
    assert!(err.contains("is not the root's owner"), "{err}");

    let (ok, out, err) = run(&[
        "chain",
        "root",
        "--requests-per-second",
        "1000",
        "--api-url",
        api,
        "--root",
        &root,
        "show",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("version 3"), "{out}");
    let model_hash = hex::encode(cocoon_chain::model_hash(model));
    assert!(out.contains(&format!("model {model_hash}")), "{out}");
    assert!(
        out.contains(&format!("worker image {}", "aa".repeat(32))),
        "{out}"
    );
    assert!(
        out.contains("clients proxy.example:9000 workers proxy.example:9001"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
