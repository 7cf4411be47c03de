//! The local chain: an in-process registry, optionally backed by a JSON file that several
//! processes on one host share (re-read when the file changes), and an in-memory ledger
//! that lives as long as the process (use `DbChain` for a durable one).

use crate::core::{slice_history, Ledger};
use crate::{Chain, ChainError, Clock, Registry, Tip, TxRecord};
use cocoon_ledger::{Op, World};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

#[derive(Debug)]
pub struct LocalChain {
    state: RwLock<State>,
    file: Option<PathBuf>,
    ledger: Mutex<(Ledger, Vec<TxRecord>)>,
    clock: Clock,
}

#[derive(Debug)]
struct State {
    registry: Arc<Registry>,
    file_mtime: Option<SystemTime>,
}

impl LocalChain {
    /// An in-memory chain holding `registry`.
    pub fn new(registry: Registry) -> Arc<Self> {
        Self::with_clock(registry, Clock::wall())
    }

    /// An in-memory chain with a chosen clock (tests: `Clock::manual`).
    pub fn with_clock(registry: Registry, clock: Clock) -> Arc<Self> {
        Arc::new(LocalChain {
            ledger: new_ledger(&registry),
            state: RwLock::new(State {
                registry: Arc::new(registry),
                file_mtime: None,
            }),
            file: None,
            clock,
        })
    }

    /// A chain whose registry lives in a JSON file; changes to the file are picked up.
    pub fn open(path: &Path) -> Result<Arc<Self>, ChainError> {
        let (registry, mtime) = read_file(path)?;
        Ok(Arc::new(LocalChain {
            ledger: new_ledger(&registry),
            state: RwLock::new(State {
                registry: Arc::new(registry),
                file_mtime: mtime,
            }),
            file: Some(path.to_path_buf()),
            clock: Clock::wall(),
        }))
    }

    /// Writes `registry` to `path` atomically (write to a temp file, fsync, rename).
    pub fn write_file(path: &Path, registry: &Registry) -> Result<(), ChainError> {
        let err = |source| ChainError::Write {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_vec_pretty(registry).map_err(|e| err(e.into()))?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&text).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Applies `change` to the registry and bumps its version (and rewrites the file, if any).
    pub fn update(&self, change: impl FnOnce(&mut Registry)) -> Result<Arc<Registry>, ChainError> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (*state.registry).clone();
        change(&mut next);
        next.version = state.registry.version + 1;
        if let Some(path) = &self.file {
            Self::write_file(path, &next)?;
            state.file_mtime = mtime(path);
        }
        // Contracts deployed from now on use the new root parameters.
        let mut ledger = self.lock_ledger();
        if ledger.0.world.params != next.params {
            Arc::make_mut(&mut ledger.0.world).params = next.params.clone();
        }
        state.registry = Arc::new(next);
        Ok(state.registry.clone())
    }

    fn lock_ledger(&self) -> std::sync::MutexGuard<'_, (Ledger, Vec<TxRecord>)> {
        // A panic while holding the lock cannot leave a half-applied op: state is swapped
        // in whole, so the poisoned value is still consistent.
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refresh_from_file(&self) {
        let Some(path) = &self.file else { return };
        let current = mtime(path);
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if current == state.file_mtime {
                return;
            }
        }
        match read_file(path) {
            Ok((registry, mtime)) => {
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                state.registry = Arc::new(registry);
                state.file_mtime = mtime;
            }
            // Keep serving the last good registry; a half-written or broken file must not
            // take the network down.
            Err(e) => tracing::warn!("ignoring registry file change: {e}"),
        }
    }
}

impl Chain for LocalChain {
    fn registry(&self) -> Arc<Registry> {
        self.refresh_from_file();
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .registry
            .clone()
    }

    fn submit(&self, op: Op) -> Result<TxRecord, ChainError> {
        let mut ledger = self.lock_ledger();
        let (next, record) = ledger.0.prepare(op, &self.clock)?;
        ledger.0 = next;
        ledger.1.push(record.clone());
        Ok(record)
    }

    fn tip(&self) -> Result<Tip, ChainError> {
        Ok(self.lock_ledger().0.tip(&self.clock))
    }

    fn world(&self) -> Result<Arc<World>, ChainError> {
        Ok(self.lock_ledger().0.world.clone())
    }

    fn history(&self, from_seq: u64, limit: usize) -> Result<Vec<TxRecord>, ChainError> {
        Ok(slice_history(&self.lock_ledger().1, from_seq, limit))
    }

    fn advance(&self, secs: u64) -> Result<Tip, ChainError> {
        crate::check_advance(secs)?;
        self.clock.advance(secs);
        self.tip()
    }
}

fn new_ledger(registry: &Registry) -> Mutex<(Ledger, Vec<TxRecord>)> {
    Mutex::new((Ledger::new(World::new(registry.params.clone())), Vec::new()))
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_file(path: &Path) -> Result<(Registry, Option<SystemTime>), ChainError> {
    let text = std::fs::read(path).map_err(|source| ChainError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let registry = serde_json::from_slice(&text).map_err(|e| ChainError::Invalid {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((registry, mtime(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_changes_are_seen_and_bad_files_ignored() {
        let dir = std::env::temp_dir().join(format!("cocoon-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("registry.json");
        LocalChain::write_file(&path, &Registry::default()).unwrap();
        let chain = LocalChain::open(&path).unwrap();
        assert!(!chain.registry().allow_sim);
        let other = LocalChain::open(&path).unwrap();
        other.update(|r| r.allow_sim = true).unwrap();
        // Coarse mtime resolution on some filesystems: force a visible change.
        std::thread::sleep(std::time::Duration::from_millis(20));
        other.update(|r| r.allow_none = true).unwrap();
        let seen = chain.registry();
        assert!(seen.allow_sim && seen.allow_none);
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(chain.registry().allow_sim, "last good registry kept");
        std::fs::remove_dir_all(&dir).ok();
    }
}
