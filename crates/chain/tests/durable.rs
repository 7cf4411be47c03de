//! The durable chain: reopen gives the same state and history, refused or failed ops change
//! nothing (no torn writes), history is append-only and ordered, time and blocks advance.

use cocoon_chain::{Chain, ChainError, Clock, DbChain, LocalChain, Registry};
use cocoon_ledger::{Address, LedgerError, Op, PublicKey};
use std::path::PathBuf;
use std::sync::Arc;

const TON: u64 = 1_000_000_000;

/// A fresh database path (removed with its WAL files when the guard drops).
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("cocoon-chain-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chain.db");
        for ext in ["", "-wal", "-shm"] {
            std::fs::remove_file(format!("{}{ext}", path.display())).ok();
        }
        TempDb(path)
    }
    fn open(&self, start: u64) -> Arc<DbChain> {
        DbChain::open(&self.0, Registry::default(), Clock::manual(start)).unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

fn alice() -> Address {
    Address::wallet("alice")
}
fn bob() -> Address {
    Address::wallet("bob")
}

/// A little of everything: mint, transfer, a proxy contract through close.
fn scenario(chain: &dyn Chain) {
    chain
        .submit(Op::Mint {
            to: alice(),
            amount: 5 * TON,
        })
        .unwrap();
    let t = Op::Transfer {
        from: alice(),
        to: bob(),
        amount: TON,
    };
    chain.submit(t).unwrap();
    let key = PublicKey([7; 32]);
    let deploy = Op::DeployProxy {
        owner: alice(),
        key,
        params_version: 0,
        stake: 2 * TON,
    };
    chain.submit(deploy).unwrap();
    let proxy = Address::proxy_contract(&alice(), &key, 0);
    chain.advance(10).unwrap();
    chain
        .submit(Op::ProxyRequestClose {
            sender: alice(),
            proxy,
        })
        .unwrap();
    let delay = chain.registry().params.proxy_delay_before_close_secs;
    chain.advance(delay + 1).unwrap();
    let done = chain
        .submit(Op::ProxyCompleteClose {
            sender: alice(),
            proxy,
        })
        .unwrap();
    assert_eq!(done.effects.paid_to(&alice()), 2 * TON, "stake returned");
}

#[test]
fn reopen_gives_same_state_history_and_time() {
    let db = TempDb::new("reopen");
    let chain = db.open(1_000);
    scenario(&*chain);
    let (world, tip) = (chain.world().unwrap(), chain.tip().unwrap());
    let history = chain.history(0, usize::MAX).unwrap();
    assert_eq!(history.len(), 5);
    assert_eq!(world.total(), u128::from(5 * TON));
    drop(chain);

    // A clock behind the stored state: the saved offset and the stored time keep it monotonic.
    let chain = db.open(0);
    assert_eq!(*chain.world().unwrap(), *world);
    assert_eq!(chain.history(0, usize::MAX).unwrap(), history);
    let again = chain.tip().unwrap();
    assert_eq!(
        (again.seq, again.block, again.block_time),
        (tip.seq, tip.block, tip.block_time)
    );
    assert!(again.now >= tip.block_time);
    // Conservation after reopen: only mints change the total.
    chain
        .submit(Op::Mint {
            to: bob(),
            amount: 3,
        })
        .unwrap();
    let w = chain.world().unwrap();
    assert_eq!(w.total(), world.total() + 3);
    assert_eq!(w.total(), u128::from(w.minted));
    w.check_invariants().unwrap();
    assert_eq!(chain.balance(&alice()).unwrap(), 4 * TON);
}

#[test]
fn refused_op_changes_nothing() {
    let db = TempDb::new("refused");
    let chain = db.open(1_000);
    chain
        .submit(Op::Mint {
            to: alice(),
            amount: 10,
        })
        .unwrap();
    let before = (chain.world().unwrap(), chain.tip().unwrap());
    let err = chain
        .submit(Op::Transfer {
            from: alice(),
            to: bob(),
            amount: 11,
        })
        .unwrap_err();
    match err {
        ChainError::Rejected {
            ledger: Some(e), ..
        } => assert!(matches!(*e, LedgerError::InsufficientFunds { .. }), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!((chain.world().unwrap(), chain.tip().unwrap()), before);
    assert_eq!(chain.history(0, 100).unwrap().len(), 1);
    drop(chain);
    let chain = db.open(1_000);
    assert_eq!(*chain.world().unwrap(), *before.0);
    assert_eq!(chain.history(0, 100).unwrap().len(), 1);
}

#[test]
fn failed_write_is_not_torn() {
    let db = TempDb::new("torn");
    let chain = db.open(1_000);
    chain
        .submit(Op::Mint {
            to: alice(),
            amount: 10,
        })
        .unwrap();
    let world = chain.world().unwrap();
    drop(chain);
    // Make the history insert fail *after* the state row was written in the same transaction.
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON history
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    drop(conn);
    let chain = db.open(1_000);
    let err = chain
        .submit(Op::Mint {
            to: alice(),
            amount: 5,
        })
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(*chain.world().unwrap(), *world, "cached state not swapped");
    drop(chain);
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute_batch("DROP TRIGGER fail_insert;").unwrap();
    drop(conn);
    let chain = db.open(1_000);
    assert_eq!(
        *chain.world().unwrap(),
        *world,
        "state row rolled back with the history row"
    );
    assert_eq!(chain.tip().unwrap().seq, 1);
    assert_eq!(
        chain
            .submit(Op::Mint {
                to: alice(),
                amount: 5
            })
            .unwrap()
            .seq,
        2
    );
}

#[test]
fn history_is_append_only_and_ordered() {
    let db = TempDb::new("history");
    let chain = db.open(1_000);
    for i in 0..6 {
        chain
            .submit(Op::Mint {
                to: alice(),
                amount: i + 1,
            })
            .unwrap();
        chain.advance(i % 2).unwrap();
    }
    let all = chain.history(1, 100).unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert!(all
        .windows(2)
        .all(|w| w[0].block <= w[1].block && w[0].time <= w[1].time));
    assert_eq!(chain.history(3, 2).unwrap(), all[2..4].to_vec());
    assert!(chain.history(7, 10).unwrap().is_empty());
    drop(chain);
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let upd = conn.execute("UPDATE history SET op = '{}' WHERE seq = 1", []);
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = conn.execute("DELETE FROM history WHERE seq = 6", []);
    assert!(del.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn time_and_blocks_advance() {
    let db = TempDb::new("time");
    let chain = db.open(1_000);
    assert_eq!(chain.now().unwrap(), 1_000);
    let a = chain
        .submit(Op::Mint {
            to: alice(),
            amount: 1,
        })
        .unwrap();
    let b = chain
        .submit(Op::Mint {
            to: alice(),
            amount: 1,
        })
        .unwrap();
    assert_eq!((a.block, b.block), (1, 1), "same second, same block");
    let tip = chain.advance(5).unwrap();
    assert_eq!(tip.now, 1_005);
    let c = chain
        .submit(Op::Mint {
            to: alice(),
            amount: 1,
        })
        .unwrap();
    assert_eq!((c.block, c.time), (2, 1_005));
    assert_eq!(chain.world().unwrap().now, 1_005);
    drop(chain);
    let chain = db.open(1_000);
    assert_eq!(chain.now().unwrap(), 1_005, "advance survives a restart");
}

#[test]
fn second_process_cannot_open_the_file() {
    let db = TempDb::new("lock");
    let chain = db.open(0);
    let err = DbChain::open(&db.0, Registry::default(), Clock::manual(0)).unwrap_err();
    assert!(matches!(err, ChainError::Db { .. }), "{err}");
    drop(chain);
    db.open(0);
}

#[test]
fn registry_updates_are_durable_and_set_params() {
    let db = TempDb::new("registry");
    let chain = db.open(0);
    let r = chain
        .update(|r| {
            r.allow_sim = true;
            r.params.min_proxy_stake = 5;
        })
        .unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(chain.world().unwrap().params.min_proxy_stake, 5);
    drop(chain);
    let chain = db.open(0);
    assert!(chain.registry().allow_sim && chain.registry().version == 1);
    assert_eq!(chain.world().unwrap().params.min_proxy_stake, 5);
}

#[test]
fn local_chain_runs_the_same_ledger_in_memory() {
    let chain = LocalChain::with_clock(Registry::default(), Clock::manual(1_000));
    scenario(&*chain);
    let history = chain.history(2, 2).unwrap();
    assert_eq!(
        history.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let world = chain.world().unwrap();
    assert_eq!(world.total(), u128::from(5 * TON));
    world.check_invariants().unwrap();
}
