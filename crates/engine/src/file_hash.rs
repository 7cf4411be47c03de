//! SHA-256 of a (possibly tens of GB) weights file, streamed, with progress: the one
//! implementation behind the worker's weights check and the model fetch/id commands.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Lowercase hex SHA-256 of the file at `path`; `progress(bytes_done, bytes_total)` is
/// called after every 1 MiB read.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64, u64)) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let total = file.metadata()?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done, total);
    }
    Ok(hex::encode(hasher.finalize()))
}
