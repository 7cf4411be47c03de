//! The official OpenAI Python SDK (`openai` from PyPI, unmodified, pinned in
//! tests/sdk/requirements.txt) against a whole paid devnet: chat completions plain and
//! streamed, legacy completions, the model list, and `NotFoundError` for an unknown model.
//! The checks live in tests/sdk/openai_sdk_check.py; `./scripts/setup.sh` installs the SDK
//! into .venv-sdk/.

mod common;

use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

#[tokio::test]
async fn official_openai_python_sdk_works_against_the_client_api() {
    let root = repo_root();
    let python = root.join(".venv-sdk/bin/python");
    let script = root.join("tests/sdk/openai_sdk_check.py");
    assert!(
        python.exists(),
        "the OpenAI Python SDK is not installed ({} is missing): run ./scripts/setup.sh",
        python.display()
    );
    let net = start_simple(
        1,
        TestEngineConfig {
            chunks: 6,
            chunk_size: 12,
            ..Default::default()
        },
    )
    .await;
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(&script)
        .arg(&net.devnet.api_url)
        .arg(&net.devnet.model)
        .current_dir(&root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true);
    // Loopback only: a proxy from the environment must not see these requests.
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command.env_remove(var).env_remove(var.to_lowercase());
    }
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{} ran past {SCRIPT_TIMEOUT:?}", script.display()))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "OpenAI SDK checks failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    println!("{stdout}");

    // The example integration (README) runs unmodified against the same network.
    let example = root.join("examples/summarize_chat.py");
    for stream in [false, true] {
        let mut command = tokio::process::Command::new(&python);
        command
            .arg(&example)
            .arg(root.join("examples/transcript.txt"))
            .args([
                "--base-url",
                &net.devnet.api_url,
                "--model",
                &net.devnet.model,
            ])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .kill_on_drop(true);
        if stream {
            command.arg("--stream");
        }
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command.env_remove(var).env_remove(var.to_lowercase());
        }
        let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
            .await
            .expect("example finishes")
            .expect("example runs");
        let out = String::from_utf8_lossy(&output.stdout);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "example failed:\n{out}\n{err}");
        assert!(!out.trim().is_empty(), "empty summary");
        assert!(err.contains("nanoTON"), "no cost reported: {err}");
    }
}
