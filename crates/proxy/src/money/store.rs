//! The proxy's own database (DESIGN §6, rollback resistance): the committed counters of
//! every client and worker contract, written in batches. Every row and the batch head are
//! signed with the proxy key, so a DB edited by hand fails to load; the head carries the
//! batch seqno and the session hash that anchors put on chain, so a DB restored from an
//! older copy is found behind the chain and refused.
//!
//! Session hash of batch n: `SHA-256("cocoon/session/v1\0" ‖ H(n−1) ‖ n ‖ rows…)`, each
//! row `kind ‖ contract ‖ owner ‖ value`, in contract order.

use super::MoneyError;
use cocoon_ledger::{Address, PublicKey, SessionHash};
use ring::digest::{Context, SHA256};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

const ROW_DOMAIN: &[u8] = b"cocoon/proxydb/row/v1\0";
const HEAD_DOMAIN: &[u8] = b"cocoon/proxydb/head/v1\0";
const SESSION_DOMAIN: &[u8] = b"cocoon/session/v1\0";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS head (id INTEGER PRIMARY KEY CHECK (id = 1),
    seqno INTEGER NOT NULL, hash BLOB NOT NULL, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (contract BLOB PRIMARY KEY, kind INTEGER NOT NULL,
    owner BLOB NOT NULL, value INTEGER NOT NULL, seqno INTEGER NOT NULL,
    signature BLOB NOT NULL);
";

/// Whose counter a row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PeerKind {
    Client,
    Worker,
}

impl PeerKind {
    fn code(self) -> u8 {
        match self {
            PeerKind::Client => 1,
            PeerKind::Worker => 2,
        }
    }

    fn from_code(code: i64) -> Option<PeerKind> {
        match code {
            1 => Some(PeerKind::Client),
            2 => Some(PeerKind::Worker),
            _ => None,
        }
    }
}

/// One committed counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub kind: PeerKind,
    pub contract: Address,
    pub owner: Address,
    /// Adjusted tokens used (client) or earned (worker), cumulative.
    pub value: u64,
    /// The batch that wrote it.
    pub seqno: u64,
}

impl Row {
    fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(ROW_DOMAIN.len() + 1 + 64 + 16);
        m.extend_from_slice(ROW_DOMAIN);
        m.push(self.kind.code());
        m.extend_from_slice(&self.contract.0);
        m.extend_from_slice(&self.owner.0);
        m.extend_from_slice(&self.value.to_be_bytes());
        m.extend_from_slice(&self.seqno.to_be_bytes());
        m
    }
}

/// The head of the DB: the last batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Head {
    pub seqno: u64,
    pub hash: SessionHash,
}

fn head_message(head: &Head) -> Vec<u8> {
    let mut m = HEAD_DOMAIN.to_vec();
    m.extend_from_slice(&head.seqno.to_be_bytes());
    m.extend_from_slice(&head.hash.0);
    m
}

/// The session hash after a batch.
pub(crate) fn next_hash(prev: &SessionHash, seqno: u64, rows: &[Row]) -> SessionHash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(SESSION_DOMAIN);
    ctx.update(&prev.0);
    ctx.update(&seqno.to_be_bytes());
    for r in rows {
        ctx.update(&[r.kind.code()]);
        ctx.update(&r.contract.0);
        ctx.update(&r.owner.0);
        ctx.update(&r.value.to_be_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    SessionHash(out)
}

pub(crate) struct Store {
    path: PathBuf,
    conn: Connection,
}

fn verify(key: &PublicKey, message: &[u8], signature: &[u8], what: &str) -> Result<(), MoneyError> {
    UnparsedPublicKey::new(&ED25519, &key.0)
        .verify(message, signature)
        .map_err(|_| MoneyError::Tampered(format!("{what}: signature does not verify")))
}

fn to_u64(v: i64, what: &str) -> Result<u64, MoneyError> {
    u64::try_from(v).map_err(|_| MoneyError::Tampered(format!("{what}: negative value")))
}

fn to_i64(v: u64) -> Result<i64, MoneyError> {
    i64::try_from(v).map_err(|_| MoneyError::Db("counter above 2^63".into()))
}

impl Store {
    /// Opens (or creates) the DB file with an exclusive lock: two proxies on one DB would
    /// fork its history.
    pub fn open(path: &Path) -> Result<Store, MoneyError> {
        let err = |e: rusqlite::Error| MoneyError::Db(format!("{}: {e}", path.display()));
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_millis(500))
            .map_err(err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn,
        })
    }

    fn err(&self, e: rusqlite::Error) -> MoneyError {
        MoneyError::Db(format!("{}: {e}", self.path.display()))
    }

    /// Reads and verifies everything. Any bad signature or malformed row refuses the DB.
    pub fn load(&self, key: &PublicKey) -> Result<(Head, Vec<Row>), MoneyError> {
        let head = self
            .conn
            .query_row(
                "SELECT seqno, hash, signature FROM head WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let head = match head {
            None => Head::default(),
            Some((seqno, hash, sig)) => {
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| MoneyError::Tampered("head hash is not 32 bytes".into()))?;
                let head = Head {
                    seqno: to_u64(seqno, "head seqno")?,
                    hash: SessionHash(hash),
                };
                verify(key, &head_message(&head), &sig, "DB head")?;
                head
            }
        };
        let mut stmt = self
            .conn
            .prepare("SELECT contract, kind, owner, value, seqno, signature FROM counters")
            .map_err(|e| self.err(e))?;
        type Raw = (Vec<u8>, i64, Vec<u8>, i64, i64, Vec<u8>);
        let raw: Vec<Raw> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let mut rows = Vec::with_capacity(raw.len());
        for (contract, kind, owner, value, seqno, sig) in raw {
            let addr = |b: Vec<u8>| {
                <[u8; 32]>::try_from(b)
                    .map(Address)
                    .map_err(|_| MoneyError::Tampered("address is not 32 bytes".into()))
            };
            let row = Row {
                kind: PeerKind::from_code(kind)
                    .ok_or_else(|| MoneyError::Tampered(format!("unknown row kind {kind}")))?,
                contract: addr(contract)?,
                owner: addr(owner)?,
                value: to_u64(value, "counter")?,
                seqno: to_u64(seqno, "row seqno")?,
            };
            if row.seqno > head.seqno {
                return Err(MoneyError::Tampered(format!(
                    "row of {} is from batch {} after the head {}",
                    row.contract, row.seqno, head.seqno
                )));
            }
            verify(key, &row.message(), &sig, "DB row")?;
            rows.push(row);
        }
        Ok((head, rows))
    }

    /// Writes one batch atomically and durably (fsync on commit).
    pub fn commit(
        &mut self,
        key: &Ed25519KeyPair,
        head: Head,
        rows: &[Row],
    ) -> Result<(), MoneyError> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| MoneyError::Db(format!("{}: {e}", path.display()));
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO counters (contract, kind, owner, value, seqno, signature)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(contract) DO UPDATE SET kind = ?2, owner = ?3, value = ?4,
                     seqno = ?5, signature = ?6",
                )
                .map_err(err)?;
            for r in rows {
                let sig = key.sign(&r.message());
                put.execute(params![
                    &r.contract.0[..],
                    i64::from(r.kind.code()),
                    &r.owner.0[..],
                    to_i64(r.value)?,
                    to_i64(r.seqno)?,
                    sig.as_ref()
                ])
                .map_err(err)?;
            }
            let sig = key.sign(&head_message(&head));
            tx.execute(
                "INSERT INTO head (id, seqno, hash, signature) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET seqno = ?1, hash = ?2, signature = ?3",
                params![to_i64(head.seqno)?, &head.hash.0[..], sig.as_ref()],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_ledger::{keypair_from_seed, public_key};

    fn temp_db() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cocoon-store-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("proxy.db")
    }

    fn row(n: u8, value: u64, seqno: u64) -> Row {
        Row {
            kind: PeerKind::Client,
            contract: Address([n; 32]),
            owner: Address([n + 1; 32]),
            value,
            seqno,
        }
    }

    #[test]
    fn batches_roundtrip_and_tampering_is_refused() {
        let key = keypair_from_seed(&[3; 32]).unwrap();
        let public = public_key(&key);
        let path = temp_db();
        {
            let mut store = Store::open(&path).unwrap();
            assert_eq!(store.load(&public).unwrap(), (Head::default(), vec![]));
            let rows = [row(1, 10, 1), row(2, 20, 1)];
            let h1 = Head {
                seqno: 1,
                hash: next_hash(&SessionHash::default(), 1, &rows),
            };
            store.commit(&key, h1, &rows).unwrap();
            let rows2 = [row(1, 15, 2)];
            let h2 = Head {
                seqno: 2,
                hash: next_hash(&h1.hash, 2, &rows2),
            };
            store.commit(&key, h2, &rows2).unwrap();
            let (head, mut got) = store.load(&public).unwrap();
            assert_eq!(head, h2);
            got.sort_by_key(|r| r.contract);
            assert_eq!(got, vec![row(1, 15, 2), row(2, 20, 1)]);
            // Another key's view: every signature fails.
            let other = public_key(&keypair_from_seed(&[4; 32]).unwrap());
            assert!(matches!(store.load(&other), Err(MoneyError::Tampered(_))));
        }
        // Edit a counter by hand: refused on load.
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute("UPDATE counters SET value = 1 WHERE value = 15", [])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let err = store.load(&public).unwrap_err();
        assert!(matches!(err, MoneyError::Tampered(_)), "{err}");
    }

    #[test]
    fn session_hash_depends_on_every_part() {
        let base = next_hash(&SessionHash::default(), 1, &[row(1, 10, 1)]);
        assert_ne!(base, next_hash(&SessionHash([1; 32]), 1, &[row(1, 10, 1)]));
        assert_ne!(
            base,
            next_hash(&SessionHash::default(), 2, &[row(1, 10, 1)])
        );
        assert_ne!(
            base,
            next_hash(&SessionHash::default(), 1, &[row(1, 11, 1)])
        );
        assert_ne!(
            base,
            next_hash(&SessionHash::default(), 1, &[row(2, 10, 1)])
        );
    }
}
