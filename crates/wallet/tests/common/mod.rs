//! Shared test helpers: a chain with a deployed proxy, commands parsed as the `cocoon`
//! binary will parse them, and signed vouchers.
#![allow(dead_code)]

use clap::Parser;
use cocoon_chain::ledger::{
    keypair_from_seed, public_key, Address, Op, SignedVoucher, Voucher, VoucherOp,
};
use cocoon_chain::Chain;
use cocoon_wallet::{ChainArgs, WalletCommand};
use std::path::PathBuf;

/// The command line as `cocoon wallet` will have it.
#[derive(Parser, Debug)]
#[command(name = "wallet")]
pub struct Cli {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(subcommand)]
    pub cmd: WalletCommand,
}

pub fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("wallet").chain(args.iter().copied()))
}

/// Runs one command against `chain`; parse errors fail the test.
pub fn wallet(chain: &dyn Chain, args: &[&str]) -> anyhow::Result<String> {
    let cli = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    cocoon_wallet::run(&cli.cmd, chain)
}

/// Like `wallet`, expecting success.
pub fn ok(chain: &dyn Chain, args: &[&str]) -> String {
    wallet(chain, args).unwrap_or_else(|e| panic!("{args:?} failed: {e:#}"))
}

/// Like `wallet`, expecting a one-line error; returns it.
pub fn err(chain: &dyn Chain, args: &[&str]) -> String {
    let e = match wallet(chain, args) {
        Ok(out) => panic!("{args:?} should fail, printed:\n{out}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(!e.contains('\n'), "error is not one line: {e}");
    e
}

/// `--json` output, parsed.
pub fn json(chain: &dyn Chain, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(chain, &all)).expect("JSON output")
}

pub const PROXY_SEED: [u8; 32] = [7; 32];
pub const TON: u64 = 1_000_000_000;

/// Deploys the proxy contract of `owner` (key from `PROXY_SEED`) with `stake`.
pub fn deploy_proxy(chain: &dyn Chain, owner: &str, stake: u64) -> Address {
    let key = public_key(&keypair_from_seed(&PROXY_SEED).unwrap());
    let owner = Address::wallet(owner);
    let params_version = chain.registry().version;
    chain
        .submit(Op::DeployProxy {
            owner,
            key,
            params_version,
            stake,
        })
        .unwrap();
    Address::proxy_contract(&owner, &key, params_version)
}

/// A voucher signed with the key of `seed`, as compact JSON.
pub fn voucher(seed: [u8; 32], op: VoucherOp, contract: Address, cumulative: u64) -> String {
    let key = keypair_from_seed(&seed).unwrap();
    let v: SignedVoucher = Voucher::new(op, contract, cumulative).sign(&key);
    serde_json::to_string(&v).unwrap()
}

/// A fresh, empty directory for this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cocoon-wallet-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `N nanoTON (X TON)` as the CLI prints it.
pub fn nano(n: u64) -> String {
    let whole = n / TON;
    let frac = n % TON;
    if frac == 0 {
        format!("{n} nanoTON ({whole} TON)")
    } else {
        let f = format!("{frac:09}");
        format!("{n} nanoTON ({whole}.{} TON)", f.trim_end_matches('0'))
    }
}
