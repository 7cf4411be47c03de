//! Model identity: a worker serves `name@revision:weights_hash` only when its weights file
//! really hashes to `weights_hash` (DESIGN §5), so a worker cannot pass off other weights.

use std::path::{Path, PathBuf};

/// Files this large report hashing progress in the log.
const PROGRESS_THRESHOLD: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model id {0:?} has no weights hash (expected name@revision:weights_hash)")]
    NoHash(String),
    #[error("weights file {path} does not match the model id: expected sha256 {expected}, actual {actual}")]
    Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

/// The `weights_hash` part of a model id.
pub fn expected_hash(model_id: &str) -> Option<&str> {
    let (_, rest) = model_id.split_once('@')?;
    let (_, hash) = rest.rsplit_once(':')?;
    (!hash.is_empty()).then_some(hash)
}

/// SHA-256 of a file as lowercase hex, streaming (weights can be tens of GB); files over
/// 256 MiB log their progress every 10%.
pub fn hash_file(path: &Path) -> Result<String, WeightsError> {
    let (mut next_report, mut step) = (u64::MAX, 0);
    hash_file_with_progress(path, |done, total| {
        if total < PROGRESS_THRESHOLD {
            return;
        }
        if step == 0 {
            step = total / 10;
            next_report = step;
        }
        if done >= next_report {
            tracing::info!(
                "hashing weights {}: {}%",
                path.display(),
                done * 100 / total.max(1)
            );
            next_report = next_report.saturating_add(step);
        }
    })
}

/// [`hash_file`] that calls `progress(bytes_done, bytes_total)` after every 1 MiB read
/// (for the operator CLI's progress line).
pub fn hash_file_with_progress(
    path: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<String, WeightsError> {
    cocoon_engine::sha256_file(path, progress).map_err(|source| WeightsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks `path` against the hash in `model_id`; returns the hash on success.
pub fn verify(model_id: &str, path: &Path) -> Result<String, WeightsError> {
    let expected =
        expected_hash(model_id).ok_or_else(|| WeightsError::NoHash(model_id.to_string()))?;
    let actual = hash_file(path)?;
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn temp_file(bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "cocoon-weights-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn matching_weights_pass_and_mismatch_names_both_hashes() {
        let path = temp_file(b"tiny weights");
        let good = format!("m@r1:{}", hex::encode(Sha256::digest(b"tiny weights")));
        assert!(verify(&good, &path).is_ok());
        let bad = format!("m@r1:{}", "ab".repeat(32));
        let err = verify(&bad, &path).unwrap_err().to_string();
        assert!(
            err.contains(&"ab".repeat(32))
                && err.contains(&hex::encode(Sha256::digest(b"tiny weights"))),
            "{err}"
        );
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn model_id_parsing() {
        assert_eq!(expected_hash("SmolLM2@abc:ff00"), Some("ff00"));
        assert_eq!(expected_hash("a@b:c:d"), Some("d"));
        assert_eq!(expected_hash("nohash@rev"), None);
        assert_eq!(expected_hash("plain"), None);
        assert!(matches!(
            verify("plain", Path::new("/nonexistent")),
            Err(WeightsError::NoHash(_))
        ));
        assert!(matches!(
            verify("a@b:cc", Path::new("/nonexistent/file")),
            Err(WeightsError::Read { .. })
        ));
    }
}
