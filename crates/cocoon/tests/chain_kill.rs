//! `cocoon chain serve` killed with SIGKILL in the middle of a stream of submits, then
//! restarted on the same database: every acknowledged op is there, unchanged, and no op is
//! half applied (state and history agree, coins are conserved).

use cocoon_chain::ledger::{Address, Op};
use cocoon_chain::{Chain, RemoteChain, TxRecord};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts the server on a free port; returns the child and its URL.
fn serve(db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cocoon"))
        .args(["chain", "serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_op() {
    let dir = std::env::temp_dir().join(format!("cocoon-chain-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("chain.db");
    let (mut child, url) = serve(&db);
    let remote = RemoteChain::connect(&url).unwrap();

    let acked: Arc<Mutex<Vec<TxRecord>>> = Arc::default();
    let submitter = {
        let (remote, acked) = (remote.clone(), acked.clone());
        std::thread::spawn(move || {
            for i in 0u64.. {
                let op = Op::Mint {
                    to: Address::wallet(&format!("w{}", i % 5)),
                    amount: i + 1,
                };
                match remote.submit(op) {
                    Ok(rec) => acked.lock().unwrap().push(rec),
                    Err(_) => return, // the server is gone
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "server too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix: no shutdown code runs
    child.wait().unwrap();
    submitter.join().unwrap();
    drop(remote);
    let acked = acked.lock().unwrap().clone();

    let (mut child, url) = serve(&db);
    let remote = RemoteChain::connect(&url).unwrap();
    let history = remote.history(0, usize::MAX).unwrap();
    // Acknowledged ops are all there, identical; at most the one in flight was added.
    assert!(history.len() >= acked.len() && history.len() <= acked.len() + 1);
    assert_eq!(history[..acked.len()], acked[..]);
    assert!(history
        .iter()
        .enumerate()
        .all(|(i, r)| r.seq == i as u64 + 1));
    // The state is exactly the replay of the history: no partial op.
    let world = remote.world().unwrap();
    let minted: u64 = history
        .iter()
        .map(|r| match r.op {
            Op::Mint { amount, .. } => amount,
            _ => 0,
        })
        .sum();
    assert_eq!(world.minted, minted);
    assert_eq!(world.total(), u128::from(minted));
    world.check_invariants().unwrap();
    assert_eq!(remote.tip().unwrap().seq, history.len() as u64);
    let next = remote
        .submit(Op::Mint {
            to: Address::wallet("w0"),
            amount: 1,
        })
        .unwrap();
    assert_eq!(next.seq, history.len() as u64 + 1);

    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
}
