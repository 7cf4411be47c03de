//! The durable chain: registry, ledger world and append-only history in ONE SQLite file.
//!
//! Every applied op is one SQL transaction that rewrites the state and appends its history
//! record together (WAL, `synchronous=FULL`: fsync on commit), so after a crash (even
//! SIGKILL or power loss) the file holds either the whole op or none of it, and every op a
//! caller saw acknowledged is there. The process caches the state in memory and only swaps
//! it after the commit succeeded.
//!
//! State is stored as one JSON snapshot of the `World` per op: simple and obviously correct,
//! but O(state) per op — fine at devnet scale (thousands of contracts). At larger scale,
//! store per-account rows updated from the op's diff, or snapshot every N ops and replay
//! the history suffix on open (the world is deterministic).
//!
//! The file is opened with an exclusive lock: one process owns it; others share it through
//! `cocoon chain serve` and `RemoteChain`. A second opener fails instead of diverging.

use crate::core::Ledger;
use crate::{Chain, ChainError, Clock, Registry, Tip, TxRecord};
use cocoon_ledger::{Op, World};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY,
    block INTEGER NOT NULL,
    time INTEGER NOT NULL,
    op TEXT NOT NULL,
    effects TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS history_no_update BEFORE UPDATE ON history
    BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS history_no_delete BEFORE DELETE ON history
    BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
";

/// Version of the on-disk layout, refused when unknown.
const FORMAT: &str = "1";

#[derive(Debug)]
pub struct DbChain {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Cached apart from `inner` so that handshakes never wait behind an fsync.
    registry: RwLock<Arc<Registry>>,
    clock: Clock,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    ledger: Ledger,
}

/// Counters stored next to the world snapshot.
#[derive(Serialize, Deserialize)]
struct StoredTip {
    seq: u64,
    block: u64,
    block_time: u64,
}

impl DbChain {
    /// Opens the chain database at `path`, creating it with `genesis` (registry, and a fresh
    /// world under its root parameters) when it does not exist yet; an existing database
    /// ignores `genesis`. A clock offset saved by `advance` is restored into `clock`.
    pub fn open(path: &Path, genesis: Registry, clock: Clock) -> Result<Arc<Self>, ChainError> {
        let err = |e: &dyn std::fmt::Display| db_error(path, e);
        let mut conn = Connection::open(path).map_err(|e| err(&e))?;
        // Another owner holds the exclusive lock for as long as it runs: fail fast rather
        // than wait rusqlite's default 5 s (a killed owner's lock is released at once).
        conn.busy_timeout(std::time::Duration::from_millis(500))
            .map_err(|e| err(&e))?;
        // `journal_mode` answers with a row, so it goes through pragma_update_and_check.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;

        let tx = conn.transaction().map_err(|e| err(&e))?;
        let format = get_meta(&tx, "format").map_err(|e| err(&e))?;
        let (registry, ledger) = match format.as_deref() {
            None => {
                let world = World::new(genesis.params.clone());
                let ledger = Ledger::new(world);
                set_meta(&tx, "format", FORMAT).map_err(|e| err(&e))?;
                set_meta(&tx, "registry", &to_json(&genesis)).map_err(|e| err(&e))?;
                set_meta(&tx, "offset", "0").map_err(|e| err(&e))?;
                write_state(&tx, &ledger).map_err(|e| err(&e))?;
                (genesis, ledger)
            }
            Some(FORMAT) => load(&tx, &clock).map_err(|e| err(&e))?,
            Some(other) => return Err(err(&format!("unknown database format {other:?}"))),
        };
        tx.commit().map_err(|e| err(&e))?;
        Ok(Arc::new(DbChain {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { conn, ledger }),
            registry: RwLock::new(Arc::new(registry)),
            clock,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `change` to the registry, bumps its version and stores it durably. New root
    /// parameters also become the world's (used by contracts deployed from now on).
    pub fn update(&self, change: impl FnOnce(&mut Registry)) -> Result<Arc<Registry>, ChainError> {
        let mut inner = self.lock();
        let current = self.registry();
        let mut next = (*current).clone();
        change(&mut next);
        next.version = current.version + 1;
        let mut ledger = inner.ledger.clone();
        if ledger.world.params != next.params {
            Arc::make_mut(&mut ledger.world).params = next.params.clone();
        }
        let tx = inner.conn.transaction().map_err(|e| self.err(&e))?;
        set_meta(&tx, "registry", &to_json(&next)).map_err(|e| self.err(&e))?;
        write_state(&tx, &ledger).map_err(|e| self.err(&e))?;
        tx.commit().map_err(|e| self.err(&e))?;
        inner.ledger = ledger;
        let next = Arc::new(next);
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = next.clone();
        Ok(next)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // State is swapped in whole after a commit, so a poisoned value is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: &dyn std::fmt::Display) -> ChainError {
        db_error(&self.path, e)
    }
}

impl Chain for DbChain {
    fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn submit(&self, op: Op) -> Result<TxRecord, ChainError> {
        let mut inner = self.lock();
        let (next, record) = inner.ledger.prepare(op, &self.clock)?;
        // State first, then the history row, in one transaction: if anything fails (disk,
        // constraint) the rollback undoes both and the cached state is not swapped.
        let tx = inner.conn.transaction().map_err(|e| self.err(&e))?;
        write_state(&tx, &next).map_err(|e| self.err(&e))?;
        tx.execute(
            "INSERT INTO history (seq, block, time, op, effects) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record.seq,
                record.block,
                record.time,
                to_json(&record.op),
                to_json(&record.effects)
            ],
        )
        .map_err(|e| self.err(&e))?;
        tx.commit().map_err(|e| self.err(&e))?;
        inner.ledger = next;
        Ok(record)
    }

    fn tip(&self) -> Result<Tip, ChainError> {
        Ok(self.lock().ledger.tip(&self.clock))
    }

    fn world(&self) -> Result<Arc<World>, ChainError> {
        Ok(self.lock().ledger.world.clone())
    }

    fn history(&self, from_seq: u64, limit: usize) -> Result<Vec<TxRecord>, ChainError> {
        let inner = self.lock();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
        let mut stmt = inner
            .conn
            .prepare_cached(
                "SELECT seq, block, time, op, effects FROM history
                 WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(params![from, limit], |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, u64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(&e))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, block, time, op, effects) = row.map_err(|e| self.err(&e))?;
            out.push(TxRecord {
                seq,
                block,
                time,
                op: from_json(&op).map_err(|e| self.err(&e))?,
                effects: from_json(&effects).map_err(|e| self.err(&e))?,
            });
        }
        Ok(out)
    }

    fn advance(&self, secs: u64) -> Result<Tip, ChainError> {
        crate::check_advance(secs)?;
        let inner = self.lock();
        let before = self.clock.offset();
        let after = self.clock.advance(secs);
        // Persisted so that a restarted devnet does not jump back in time (which would
        // silently undo a test's wait for a close delay).
        if let Err(e) = set_meta(&inner.conn, "offset", &after.to_string()) {
            self.clock.set_offset(before);
            return Err(self.err(&e));
        }
        Ok(inner.ledger.tip(&self.clock))
    }
}

fn load(conn: &Connection, clock: &Clock) -> Result<(Registry, Ledger), String> {
    let need = |key: &str| -> Result<String, String> {
        get_meta(conn, key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("missing {key}"))
    };
    let registry: Registry = from_json(&need("registry")?).map_err(|e| format!("registry: {e}"))?;
    let world: World = from_json(&need("world")?).map_err(|e| format!("world: {e}"))?;
    let tip: StoredTip = from_json(&need("tip")?).map_err(|e| format!("tip: {e}"))?;
    let offset: u64 = need("offset")?
        .parse()
        .map_err(|e| format!("offset: {e}"))?;
    let last: Option<u64> = conn
        .query_row("SELECT MAX(seq) FROM history", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    // Both are written in one transaction, so a mismatch means the file was tampered with.
    if last.unwrap_or(0) != tip.seq {
        return Err(format!(
            "state is at seq {} but history ends at {}",
            tip.seq,
            last.unwrap_or(0)
        ));
    }
    world
        .check_invariants()
        .map_err(|e| format!("stored world: {e}"))?;
    clock.set_offset(offset);
    let ledger = Ledger {
        world: Arc::new(world),
        seq: tip.seq,
        block: tip.block,
        block_time: tip.block_time,
    };
    Ok((registry, ledger))
}

fn write_state(conn: &Connection, ledger: &Ledger) -> rusqlite::Result<()> {
    set_meta(conn, "world", &to_json(&*ledger.world))?;
    let tip = StoredTip {
        seq: ledger.seq,
        block: ledger.block,
        block_time: ledger.block_time,
    };
    set_meta(conn, "tip", &to_json(&tip))
}

fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map(|_| ())
}

/// Our own types always serialise (string map keys, no floats), hence no error path.
fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| unreachable!("serialising chain state: {e}"))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(text)
}

fn db_error(path: &Path, e: &dyn std::fmt::Display) -> ChainError {
    ChainError::Db {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
