//! `cocoon chain deploy-root` and `cocoon chain root …` against a local TON network (the Tolk
//! contracts in @ton/sandbox behind the toncenter v2 API): the operator deploys a root,
//! allows a model and an image, lists a proxy, and `show` reads them back from the contract.

#[path = "../../ton/tests/sandbox/mod.rs"]
mod sandbox;

use std::process::Command;

fn cocoon(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(&args[..2])
        .args(["--requests-per-second", "1000"])
        .args(&args[2..])
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

    let (ok, out, err) = cocoon(&[
        "chain",
        "deploy-root",
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
            "--api-url",
            api,
            "--wallet-seed-file",
            seed,
            "--root",
            &root,
        ];
        args.extend_from_slice(action);
        cocoon(&args)
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

    let (ok, out, err) = cocoon(&["chain", "root", "--api-url", api, "--root", &root, "show"]);
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
