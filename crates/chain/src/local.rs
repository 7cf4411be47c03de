//! The local chain: an in-process registry, optionally backed by a JSON file that several
//! processes on one host share (re-read when the file changes).

use crate::{Chain, ChainError, Registry};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

#[derive(Debug)]
pub struct LocalChain {
    state: RwLock<State>,
    file: Option<PathBuf>,
}

#[derive(Debug)]
struct State {
    registry: Arc<Registry>,
    file_mtime: Option<SystemTime>,
}

impl LocalChain {
    /// An in-memory chain holding `registry`.
    pub fn new(registry: Registry) -> Arc<Self> {
        Arc::new(LocalChain {
            state: RwLock::new(State {
                registry: Arc::new(registry),
                file_mtime: None,
            }),
            file: None,
        })
    }

    /// A chain whose registry lives in a JSON file; changes to the file are picked up.
    pub fn open(path: &Path) -> Result<Arc<Self>, ChainError> {
        let (registry, mtime) = read_file(path)?;
        Ok(Arc::new(LocalChain {
            state: RwLock::new(State {
                registry: Arc::new(registry),
                file_mtime: mtime,
            }),
            file: Some(path.to_path_buf()),
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
        state.registry = Arc::new(next);
        Ok(state.registry.clone())
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
