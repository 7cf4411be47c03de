//! A worker in front of a real third-party engine process: llama.cpp's OpenAI-compatible
//! server (PyPI `llama-cpp-python[server]`, installed into .venv-llama by scripts/setup.sh)
//! serving the default GGUF. That server sends no usage when streaming (it ignores
//! `stream_options.include_usage`), the case where the reference network bills zero: the
//! worker counts the tokens itself with the model's tokenizer, and the count must equal the
//! engine's own non-streaming usage for the same greedy request.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cocoon_devnet::{DevnetConfig, EngineChoice};
use cocoon_engine::test_engine::TestEngineConfig;
use common::*;
use serde_json::{json, Value};

const MODEL: &str = "SmolLM2-135M-Instruct";

/// The server process, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_llama_server() -> (Server, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv-llama/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh (it installs llama-cpp-python[server])",
        python.display()
    );
    let model = cocoon_llama::fetch::default_model_path();
    assert!(model.is_file(), "run `cocoon model fetch` first");
    let port = free_port();
    let child = Command::new(python)
        .args([
            "-m",
            "llama_cpp.server",
            "--host",
            "127.0.0.1",
            "--n_threads",
            "1",
        ])
        .args([
            "--n_ctx",
            "2048",
            "--model_alias",
            MODEL,
            "--port",
            &port.to_string(),
        ])
        // By default this server aborts a running stream whenever another request arrives,
        // the worker's health probe (GET /v1/models) included.
        .args(["--interrupt_requests", "false"])
        .arg("--model")
        .arg(&model)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama_cpp.server starts");
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}/v1");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(format!("{base}/models")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "llama.cpp server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (server, base)
}

fn greedy(stream: bool) -> Value {
    json!({"model": MODEL, "temperature": 0, "max_tokens": 24, "stream": stream,
           "messages": [{"role": "user", "content": "Name three colours."}]})
}

#[tokio::test]
async fn streamed_answers_from_an_engine_without_usage_are_billed_exactly() {
    let (_server, base) = start_llama_server().await;
    let http = reqwest::Client::new();

    // llama-cpp-python reuses the KV cache of the previous request's prompt, which makes
    // the first request's greedy answer differ slightly from later identical ones: warm up.
    http.post(format!("{base}/chat/completions"))
        .json(&greedy(false))
        .send()
        .await
        .unwrap();
    // What the engine itself says, directly: the reference usage.
    let direct: Value = http
        .post(format!("{base}/chat/completions"))
        .json(&greedy(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reference = &direct["usage"];
    let reference_text = direct["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        reference["completion_tokens"].as_u64().unwrap() > 0,
        "{direct}"
    );
    // And it really sends no usage when streaming, even when asked.
    let mut asked = greedy(true);
    asked["stream_options"] = json!({"include_usage": true});
    let raw = http
        .post(format!("{base}/chat/completions"))
        .json(&asked)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !raw.contains("\"usage\":{"),
        "this engine now reports usage: {raw}"
    );

    let mut config = DevnetConfig::for_tests(1, TestEngineConfig::default());
    config.engine = EngineChoice::External {
        base_url: base.clone(),
        model: MODEL.into(),
        tokenizer: Some(cocoon_llama::fetch::default_model_path()),
    };
    let net = start(config).await;

    // Non-streaming through the network: the engine's usage, billed.
    let res = net.post("/v1/chat/completions", &greedy(false)).await;
    assert_eq!(res.status(), 200);
    let whole: Value = res.json().await.unwrap();
    for k in ["prompt_tokens", "completion_tokens"] {
        assert_eq!(whole["usage"][k], reference[k], "{k}: {whole}");
    }
    assert!(whole["usage"]["total_cost"].as_u64().unwrap() > 0);

    // Streaming through the network: counted by the worker, equal to the engine's own.
    let res = net.post("/v1/chat/completions", &asked).await;
    assert_eq!(res.status(), 200);
    // This server separates events with CRLFs: read `data:` lines, not blank-line blocks.
    let body = res.text().await.unwrap();
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("data:").map(str::trim))
        .collect();
    let mut text = String::new();
    let mut usage = Value::Null;
    for event in events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
    {
        text.push_str(
            event["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
        if !event["usage"].is_null() {
            usage = event["usage"].clone();
        }
    }
    assert_eq!(text, reference_text, "{body}");
    for k in ["prompt_tokens", "completion_tokens"] {
        assert_eq!(
            usage[k], reference[k],
            "{k}: streamed {usage}, engine {reference}"
        );
    }
    // Same tokens, same price: billed exactly like the non-streaming answer.
    assert_eq!(usage["total_cost"], whole["usage"]["total_cost"]);
}
