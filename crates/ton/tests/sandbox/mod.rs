//! A local TON network for tests: `contracts/scripts/sandbox-api.js` (an @ton/sandbox
//! blockchain behind the toncenter v2 API) as a child process, plus its faucet and clock.
//! Shared by test crates that each use part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Sandbox {
    child: Child,
    /// The toncenter-style base URL (`…/api/v2`).
    pub api: String,
    base: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Sandbox {
    /// Starts the server (contracts/node_modules must be installed: `scripts/setup.sh`).
    pub fn start() -> Sandbox {
        let contracts = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts");
        let mut child = Command::new("node")
            .args(["scripts/sandbox-api.js", "--port", "0"])
            .current_dir(contracts)
            // The server exits when its stdin closes: a killed test leaks nothing.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs contracts/scripts/sandbox-api.js (run scripts/setup.sh)");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the sandbox prints its address");
        let api = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let base = api.trim_end_matches("/api/v2").to_string();
        Sandbox {
            child,
            api,
            base,
            http: reqwest::Client::new(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let request = self.http.post(format!("{}{path}", self.base)).json(&body);
        let v: serde_json::Value = self
            .rt
            .block_on(async { request.send().await?.json().await })
            .expect("sandbox answers");
        assert_eq!(v["ok"], true, "{path}: {v}");
        v["result"].clone()
    }

    /// Sends `nanotons` from the sandbox treasury to `address` (non-bounceable).
    pub fn fund(&self, address: &str, nanotons: u64) {
        self.post(
            "/sandbox/fund",
            serde_json::json!({"address": address, "amount": nanotons.to_string()}),
        );
    }

    /// A TON API config for the sandbox: no pacing to speak of, short backoff.
    pub fn api_config(&self) -> cocoon_ton::api::ApiConfig {
        let mut c = cocoon_ton::api::ApiConfig::new(&self.api, None);
        c.requests_per_second = 10_000.0;
        c.backoff = std::time::Duration::from_millis(5);
        c
    }

    /// Deploys a root with the default params, owned by the wallet of `seed` (funded here);
    /// returns its address and that wallet.
    pub fn deploy_root(
        &self,
        seed: u8,
    ) -> (cocoon_ton::TonAddress, cocoon_ton::wallet::NodeWallet) {
        use cocoon_ton::wallet::{NodeWallet, WalletVersion};
        let owner = NodeWallet::from_seed(&[seed; 32], WalletVersion::V4R2).unwrap();
        self.fund(&owner.address().to_hex(), 100_000_000_000);
        let api = cocoon_ton::api::TonApi::new(self.api_config()).unwrap();
        let params =
            cocoon_ton::messages::Params::try_from(&cocoon_chain::ledger::RootParams::default())
                .unwrap();
        let deployed = self
            .rt
            .block_on(cocoon_ton::deploy::deploy_root(
                &api,
                &owner,
                owner.address(),
                &params,
                1_000_000_000,
                std::time::Duration::from_secs(10),
                |_| {},
            ))
            .unwrap();
        match deployed {
            cocoon_ton::deploy::Deployed::Sent { address, .. } => (address, owner),
            other => panic!("{other:?}"),
        }
    }

    /// Sends `body` with 0.1 TON from `wallet` to `to` and waits until the wallet sent it.
    pub fn send(
        &self,
        wallet: &cocoon_ton::wallet::NodeWallet,
        to: &cocoon_ton::TonAddress,
        body: cocoon_ton::Cell,
    ) {
        let api = cocoon_ton::api::TonApi::new(self.api_config()).unwrap();
        let message = cocoon_ton::wallet::Outgoing {
            to: to.clone(),
            value: 100_000_000,
            bounce: true,
            body,
            state_init: None,
        };
        let wait = std::time::Duration::from_secs(10);
        self.rt
            .block_on(cocoon_ton::deploy::send_and_wait(
                &api, wallet, message, wait,
            ))
            .unwrap();
    }

    /// Moves the sandbox clock forward.
    pub fn advance(&self, secs: u64) {
        self.post("/sandbox/advance", serde_json::json!({ "secs": secs }));
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
