//! `RemoteChain` against an in-process `http::serve`: ops, state, history, time and the
//! registry round-trip; refusals and malformed requests come back as clear errors.

use cocoon_chain::{Chain, ChainError, Clock, DbChain, Registry, RemoteChain};
use cocoon_ledger::{Address, Op};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serves `chain` on its own runtime thread (the test thread blocks in sync calls).
fn start_server(chain: Arc<dyn Chain>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            cocoon_chain::http::serve(chain, listener, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// One raw HTTP/1.1 exchange; returns the status code and body.
fn raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body: ignore write errors.
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn remote_chain_round_trips() {
    let dir = std::env::temp_dir().join(format!("cocoon-chain-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chain.db");
    std::fs::remove_file(&path).ok();
    let db = DbChain::open(&path, Registry::default(), Clock::manual(500)).unwrap();
    let addr = start_server(db.clone());
    let url = format!("http://{addr}");
    let remote = RemoteChain::connect_with(&url, Duration::from_millis(50)).unwrap();
    assert_eq!(*remote.registry(), *db.registry());

    let alice = Address::wallet("alice");
    let bob = Address::wallet("bob");
    let rec = remote
        .submit(Op::Mint {
            to: alice,
            amount: 100,
        })
        .unwrap();
    assert_eq!((rec.seq, rec.time), (1, 500));
    remote
        .submit(Op::Transfer {
            from: alice,
            to: bob,
            amount: 30,
        })
        .unwrap();
    assert_eq!(remote.balance(&bob).unwrap(), 30);
    assert_eq!(*remote.world().unwrap(), *db.world().unwrap());
    assert_eq!(remote.history(0, 10).unwrap(), db.history(0, 10).unwrap());
    assert_eq!(remote.history(2, 10).unwrap().len(), 1);

    let err = remote
        .submit(Op::Transfer {
            from: bob,
            to: alice,
            amount: 31,
        })
        .unwrap_err();
    match &err {
        ChainError::Rejected {
            reason,
            ledger: None,
        } => {
            assert!(reason.contains("insufficient funds"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(db.tip().unwrap().seq, 2, "refused op not recorded");

    let tip = remote.advance(60).unwrap();
    assert_eq!(tip.now, 560);
    assert_eq!(remote.now().unwrap(), 560);

    // Registry changes reach the cache without any call from us.
    db.update(|r| r.allow_sim = true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !remote.registry().allow_sim {
        assert!(Instant::now() < deadline, "registry never refreshed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(remote.refresh_registry().unwrap().version, 1);

    // Malformed and oversized requests: clear 4xx answers, the server stays up.
    let (status, body) = raw(addr, "POST", "/submit", b"{\"op\":\"mint\"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let (status, _) = raw(addr, "POST", "/submit", &vec![b' '; 1 << 20]);
    assert_eq!(status, 413);
    let (status, body) = raw(addr, "GET", "/balance/nothex", b"");
    assert_eq!(status, 400, "{body}");
    assert_eq!(raw(addr, "GET", "/history?from=-1", b"").0, 400);
    assert_eq!(remote.tip().unwrap().seq, 2);

    drop(remote);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unreachable_server_fails_fast() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = RemoteChain::connect(&format!("http://{addr}")).unwrap_err();
    assert!(matches!(err, ChainError::Remote { .. }), "{err}");
}
