//! Proof of work on the raw TCP stream BEFORE TLS (DESIGN §3): makes a connection flood pay for
//! the server's attestation checks.
//!
//! ```text
//! server → client   "CPW1" ‖ difficulty u8 ‖ salt [16]
//! client → server   nonce u64 LE        with SHA-256(salt ‖ nonce_le) having ≥ difficulty
//!                                       leading zero bits
//! server → client   0x01 (accepted)     or the server closes the connection
//! ```
//! Difficulty 0 runs the same exchange with no work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MAGIC: [u8; 4] = *b"CPW1";
pub const DEFAULT_DIFFICULTY: u8 = 20;
pub const CLIENT_MAX_DIFFICULTY: u8 = 28;
const ACCEPTED: u8 = 1;

#[derive(thiserror::Error, Debug)]
pub enum PowError {
    #[error("proof of work i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("proof of work timed out")]
    Timeout,
    #[error("proof of work: bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    #[error("proof of work difficulty {asked} exceeds our maximum {max}")]
    TooHard { asked: u8, max: u8 },
    #[error("proof of work nonce is wrong")]
    WrongNonce,
    #[error("proof of work rejected by server (reply {0})")]
    Rejected(u8),
    #[error("proof of work solver failed: {0}")]
    Solver(String),
}

/// Leading zero bits of SHA-256(salt ‖ nonce_le) ≥ difficulty?
pub fn check(salt: &[u8; 16], nonce: u64, difficulty: u8) -> bool {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(nonce.to_le_bytes());
    leading_zero_bits(&h.finalize()) >= u32::from(difficulty)
}

fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        n += b.leading_zeros();
        if *b != 0 {
            break;
        }
    }
    n
}

/// Find a nonce. Expected 2^difficulty hashes; loops forever for difficulties no nonce reaches
/// (> ~64), which is why clients refuse anything above their maximum first.
pub fn solve_nonce(salt: &[u8; 16], difficulty: u8) -> u64 {
    let never = AtomicBool::new(false);
    // Only cancellation ends the search without a nonce, and `never` is never set.
    solve_from(salt, difficulty, 0, &never).unwrap_or_default()
}

/// Hashes between cancellation checks.
const SLICE: u64 = 1 << 16;

/// Search `SLICE` nonces at a time from `start`, checking `cancel` in between; `None` = cancelled.
fn solve_from(salt: &[u8; 16], difficulty: u8, start: u64, cancel: &AtomicBool) -> Option<u64> {
    let mut base = start;
    // One hasher state with the salt absorbed, cloned per nonce: halves the hashing work.
    let mut prefix = Sha256::new();
    prefix.update(salt);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        for i in 0..SLICE {
            let nonce = base.wrapping_add(i);
            let mut h = prefix.clone();
            h.update(nonce.to_le_bytes());
            if leading_zero_bits(&h.finalize()) >= u32::from(difficulty) {
                return Some(nonce);
            }
        }
        base = base.wrapping_add(SLICE);
    }
}

/// Server side. On `Err` the caller must close the connection.
pub async fn challenge<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    difficulty: u8,
    timeout: Duration,
) -> Result<(), PowError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let exchange = async {
        let mut hello = [0u8; 21];
        hello[..4].copy_from_slice(&MAGIC);
        hello[4] = difficulty;
        hello[5..].copy_from_slice(&salt);
        stream.write_all(&hello).await?;
        stream.flush().await?;
        let mut nonce = [0u8; 8];
        stream.read_exact(&mut nonce).await?;
        if !check(&salt, u64::from_le_bytes(nonce), difficulty) {
            return Err(PowError::WrongNonce);
        }
        stream.write_all(&[ACCEPTED]).await?;
        stream.flush().await?;
        Ok(())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| PowError::Timeout)?
}

/// Sets the flag when dropped, so a timed-out or cancelled `solve` stops its blocking search.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Client side: answer the server's challenge, refusing difficulties above `max_difficulty`.
pub async fn solve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    max_difficulty: u8,
    timeout: Duration,
) -> Result<(), PowError> {
    let exchange = async {
        // Magic first, on its own: a peer speaking another protocol fails at once instead of
        // at the timeout.
        let mut magic = [0u8; 4];
        stream.read_exact(&mut magic).await?;
        if magic != MAGIC {
            return Err(PowError::BadMagic(magic));
        }
        let difficulty = stream.read_u8().await?;
        if difficulty > max_difficulty {
            return Err(PowError::TooHard {
                asked: difficulty,
                max: max_difficulty,
            });
        }
        let mut salt = [0u8; 16];
        stream.read_exact(&mut salt).await?;
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = cancel.0.clone();
        // Hashing is CPU-bound: keep it off the async workers.
        let nonce = tokio::task::spawn_blocking(move || solve_from(&salt, difficulty, 0, &flag))
            .await
            .map_err(|e| PowError::Solver(e.to_string()))?
            .ok_or_else(|| PowError::Solver("cancelled".into()))?;
        drop(cancel);
        stream.write_all(&nonce.to_le_bytes()).await?;
        stream.flush().await?;
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply).await?;
        if reply[0] != ACCEPTED {
            return Err(PowError::Rejected(reply[0]));
        }
        Ok(())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| PowError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn solve_then_check_at_difficulty_8() {
        let salt = [42u8; 16];
        let nonce = solve_nonce(&salt, 8);
        assert!(check(&salt, nonce, 8));
        // Independent recomputation of the documented hash.
        let mut cat = salt.to_vec();
        cat.extend_from_slice(&nonce.to_le_bytes());
        let digest = Sha256::digest(&cat);
        assert_eq!(
            digest[0], 0,
            "8 leading zero bits means the first byte is zero"
        );
        // Found nonce is the first one: every smaller nonce fails.
        assert!((0..nonce).all(|n| !check(&salt, n, 8)));
    }

    #[test]
    fn difficulty_zero_needs_no_work() {
        assert_eq!(solve_nonce(&[0; 16], 0), 0);
        assert!(check(&[1; 16], 12345, 0));
    }

    #[test]
    fn cancellation_stops_search() {
        let cancel = AtomicBool::new(true);
        assert_eq!(solve_from(&[0; 16], 200, 0, &cancel), None);
    }
}
