//! The proof-of-work exchange, the first bytes a node reads from any TCP peer: the client's
//! parse of the server hello (`pow::solve`) and the server's parse of the nonce
//! (`pow::challenge`), over in-memory streams carrying the input. Properties (as in
//! `crates/attest/tests/fuzz_pow.rs`):
//!
//! - nothing panics, and each side finishes without waiting for its timeout;
//! - the client accepts exactly a well-formed hello within its difficulty cap followed by the
//!   server's OK byte, sends one nonce at most, and says precisely what was wrong otherwise;
//! - the server accepts exactly a nonce that solves its challenge.
//!
//! Input: one byte whose low bit picks the side (client: the rest is what the server sends;
//! server: the next byte is its difficulty, the rest what the client sends).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cocoon_attest::pow::{self, PowError, MAGIC};
use cocoon_fuzz::split_first;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most work a client accepts here: difficulties above this are refused before any hashing.
const MAX_DIFFICULTY: u8 = 10;
const T: Duration = Duration::from_secs(5);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn client(bytes: &[u8]) {
    let r = runtime().block_on(async {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        server.write_all(bytes).await.unwrap();
        server.shutdown().await.unwrap();
        let started = Instant::now();
        let r = pow::solve(&mut client, MAX_DIFFICULTY, T).await;
        assert!(started.elapsed() < T, "the client waited for its timeout");
        drop(client);
        let mut sent = Vec::new();
        server.read_to_end(&mut sent).await.unwrap();
        assert!(
            sent.is_empty() || sent.len() == 8,
            "sent {} bytes",
            sent.len()
        );
        r
    });
    let well_formed = bytes.len() >= 22 && bytes[..4] == MAGIC && bytes[4] <= MAX_DIFFICULTY;
    match r {
        Ok(()) => assert!(well_formed && bytes[21] == 1),
        Err(PowError::BadMagic(m)) => assert!(bytes.len() >= 4 && m[..] == bytes[..4]),
        Err(PowError::TooHard { asked, max }) => {
            assert!(asked > max && max == MAX_DIFFICULTY && bytes[4] == asked)
        }
        Err(PowError::Rejected(b)) => assert!(well_formed && b != 1 && bytes[21] == b),
        Err(PowError::Io(_)) => assert!(!well_formed),
        Err(e) => panic!("unexpected {e}"),
    }
}

fn server(difficulty: u8, bytes: &[u8]) {
    let (r, out) = runtime().block_on(async {
        let (mut server, mut client) = tokio::io::duplex(1 << 16);
        client.write_all(bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let r = pow::challenge(&mut server, difficulty, T).await;
        drop(server);
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        (r, out)
    });
    assert!(out.len() >= 21 && out[..4] == MAGIC && out[4] == difficulty);
    let salt: [u8; 16] = out[5..21].try_into().unwrap();
    let rest = &out[21..];
    let nonce = || u64::from_le_bytes(bytes[..8].try_into().unwrap());
    match r {
        Ok(()) => {
            assert!(pow::check(&salt, nonce(), difficulty));
            assert_eq!(rest, [1u8]);
        }
        Err(PowError::WrongNonce) => {
            assert!(!pow::check(&salt, nonce(), difficulty));
            assert!(rest.is_empty());
        }
        Err(PowError::Io(_)) => assert!(bytes.len() < 8 && rest.is_empty()),
        Err(e) => panic!("unexpected {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (side, rest) = split_first(data);
    if side & 1 == 0 {
        client(rest);
    } else {
        // Difficulty 0..=8: a solving nonce is within reach of the fuzzer at the low end.
        let (d, nonce) = split_first(rest);
        server(d % 9, nonce);
    }
});
