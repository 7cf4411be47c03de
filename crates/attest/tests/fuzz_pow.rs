//! Fuzzing the proof-of-work exchange, the first bytes a node reads from any TCP peer: the
//! client's parse of the server hello (`pow::solve`) and the server's parse of the nonce
//! (`pow::challenge`), over in-memory streams carrying arbitrary bytes. Properties:
//!
//! - nothing panics, and each side finishes quickly (no wait beyond the peer's EOF, no work
//!   above the difficulty cap) with an error that says what was wrong;
//! - the client accepts exactly a well-formed hello within its difficulty cap followed by the
//!   server's OK byte; the server accepts exactly a nonce that solves its challenge.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-attest --test fuzz_pow` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

use std::time::{Duration, Instant};

use cocoon_attest::pow::{self, PowError, MAGIC};
use proptest::prelude::*;
use support::config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Most work a case may cost: difficulties above this are refused before any hashing.
const MAX_DIFFICULTY: u8 = 10;
const T: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The client reading `server_bytes` (then EOF) as the server's side of the exchange.
fn solve_against(server_bytes: &[u8]) -> Result<(), PowError> {
    runtime().block_on(async {
        let (mut client, mut server) = tokio::io::duplex(1 << 16);
        server.write_all(server_bytes).await.unwrap();
        server.shutdown().await.unwrap();
        let started = Instant::now();
        let r = pow::solve(&mut client, MAX_DIFFICULTY, T).await;
        assert!(started.elapsed() < T, "the client waited for its timeout");
        // What it sent is one nonce at most.
        drop(client);
        let mut sent = Vec::new();
        server.read_to_end(&mut sent).await.unwrap();
        assert!(
            sent.is_empty() || sent.len() == 8,
            "sent {} bytes",
            sent.len()
        );
        r
    })
}

/// A server with `difficulty` reading `client_bytes` (then EOF); returns the result, the
/// salt it sent and what else it wrote.
fn challenge_with(
    difficulty: u8,
    client_bytes: &[u8],
) -> (Result<(), PowError>, [u8; 16], Vec<u8>) {
    runtime().block_on(async {
        let (mut server, mut client) = tokio::io::duplex(1 << 16);
        client.write_all(client_bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let r = pow::challenge(&mut server, difficulty, T).await;
        drop(server);
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        assert!(out.len() >= 21 && out[..4] == MAGIC && out[4] == difficulty);
        let salt: [u8; 16] = out[5..21].try_into().unwrap();
        (r, salt, out[21..].to_vec())
    })
}

/// A server hello: mostly well-formed, with any difficulty, then an arbitrary reply.
fn hello() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => support::bytes(40),
        4 => (
            prop_oneof![4 => Just(MAGIC.to_vec()), 1 => support::bytes(4)],
            prop_oneof![3 => 0..=MAX_DIFFICULTY + 2, 1 => any::<u8>()],
            prop_oneof![4 => support::bytes(16).prop_filter("salt", |s| s.len() == 16),
                1 => support::bytes(16)],
            prop_oneof![3 => Just(vec![1u8]), 1 => Just(vec![]), 1 => support::bytes(4)],
        )
            .prop_map(|(magic, d, salt, reply)| [magic, vec![d], salt, reply].concat()),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn client_parses_any_server_bytes(bytes in hello()) {
        let r = solve_against(&bytes);
        let well_formed = bytes.len() >= 22 && bytes[..4] == MAGIC && bytes[4] <= MAX_DIFFICULTY;
        match r {
            Ok(()) => prop_assert!(well_formed && bytes[21] == 1),
            Err(PowError::BadMagic(m)) => prop_assert!(bytes.len() >= 4 && m[..] == bytes[..4]),
            Err(PowError::TooHard { asked, max }) => {
                prop_assert!(asked > max && max == MAX_DIFFICULTY && bytes[4] == asked)
            }
            Err(PowError::Rejected(b)) => prop_assert!(well_formed && b != 1 && bytes[21] == b),
            Err(PowError::Io(_)) => prop_assert!(!(well_formed && bytes.len() >= 22)),
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
    }

    #[test]
    fn server_parses_any_client_bytes(
        difficulty in 0u8..=8,
        bytes in support::bytes(16),
    ) {
        let (r, salt, rest) = challenge_with(difficulty, &bytes);
        match r {
            Ok(()) => {
                let nonce = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                prop_assert!(pow::check(&salt, nonce, difficulty));
                prop_assert_eq!(rest, vec![1u8]);
            }
            Err(PowError::WrongNonce) => {
                let nonce = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                prop_assert!(!pow::check(&salt, nonce, difficulty));
                prop_assert!(rest.is_empty());
            }
            Err(PowError::Io(_)) => prop_assert!(bytes.len() < 8 && rest.is_empty()),
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
        // Difficulty 0: any 8 bytes pass.
        if difficulty == 0 && bytes.len() >= 8 {
            prop_assert!(challenge_with(0, &bytes).0.is_ok());
        }
    }
}

/// Hellos on the edges: the cap exactly, one above it, unreachable difficulties, and a
/// server that never sends its OK byte.
#[test]
fn corpus() {
    let salt = [7u8; 16];
    let with = |d: u8, reply: &[u8]| [&MAGIC[..], &[d], &salt, reply].concat();
    assert!(solve_against(&with(MAX_DIFFICULTY, &[1])).is_ok());
    assert!(solve_against(&with(0, &[1])).is_ok());
    assert!(matches!(solve_against(&with(0, &[])), Err(PowError::Io(_))));
    assert!(matches!(
        solve_against(&with(0, &[2])),
        Err(PowError::Rejected(2))
    ));
    for d in [MAX_DIFFICULTY + 1, 64, 255] {
        assert!(matches!(
            solve_against(&with(d, &[1])),
            Err(PowError::TooHard { .. })
        ));
    }
    assert!(matches!(solve_against(b"CPW"), Err(PowError::Io(_))));
    assert!(matches!(solve_against(b"CPW2"), Err(PowError::BadMagic(_))));
    assert!(matches!(solve_against(&MAGIC), Err(PowError::Io(_))));
    // Timeout: a server that sends nothing and never closes.
    runtime().block_on(async {
        let (mut client, _server) = tokio::io::duplex(64);
        let r = pow::solve(&mut client, MAX_DIFFICULTY, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(PowError::Timeout)));
    });
}
