//! Proof-of-work exchange over in-memory and TCP streams.

use std::time::Duration;

use cocoon_attest::pow::{self, PowError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn roundtrip_at_difficulty_8_and_0() {
    for difficulty in [8, 0] {
        let (mut a, mut b) = tokio::io::duplex(64);
        let server = tokio::spawn(async move { pow::challenge(&mut a, difficulty, T).await });
        pow::solve(&mut b, pow::CLIENT_MAX_DIFFICULTY, T)
            .await
            .unwrap();
        server.await.unwrap().unwrap();
    }
}

#[test]
fn solve_and_check_roundtrip() {
    let salt = [3u8; 16];
    let nonce = pow::solve_nonce(&salt, 8);
    assert!(pow::check(&salt, nonce, 8));
    let wrong = (0..).find(|n| !pow::check(&salt, *n, 8)).unwrap();
    assert!(!pow::check(&salt, wrong, 8));
}

#[tokio::test]
async fn wrong_nonce_rejected_by_server() {
    let (mut a, mut b) = tokio::io::duplex(64);
    let server = tokio::spawn(async move { pow::challenge(&mut a, 16, T).await });
    let mut hello = [0u8; 21];
    b.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello[..4], b"CPW1");
    assert_eq!(hello[4], 16);
    let salt: [u8; 16] = hello[5..].try_into().unwrap();
    let wrong = (0..).find(|n| !pow::check(&salt, *n, 16)).unwrap();
    b.write_all(&wrong.to_le_bytes()).await.unwrap();
    assert!(matches!(server.await.unwrap(), Err(PowError::WrongNonce)));
    // No OK byte: the server dropped its end instead.
    let mut rest = Vec::new();
    b.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn too_hard_refused_by_client() {
    let (mut a, mut b) = tokio::io::duplex(64);
    let server =
        tokio::spawn(async move { pow::challenge(&mut a, 30, Duration::from_secs(2)).await });
    let err = pow::solve(&mut b, pow::CLIENT_MAX_DIFFICULTY, T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PowError::TooHard { asked: 30, max: 28 }),
        "{err}"
    );
    drop(b);
    assert!(server.await.unwrap().is_err());
}

#[tokio::test]
async fn garbage_is_an_error_on_both_sides() {
    // Client receives garbage instead of a challenge.
    let (mut a, mut b) = tokio::io::duplex(64);
    a.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
    let err = pow::solve(&mut b, 28, T).await.unwrap_err();
    assert!(matches!(err, PowError::BadMagic(_)), "{err}");

    // Server receives a short answer then EOF.
    let (mut a, mut b) = tokio::io::duplex(64);
    let server = tokio::spawn(async move { pow::challenge(&mut a, 8, T).await });
    let mut hello = [0u8; 21];
    b.read_exact(&mut hello).await.unwrap();
    b.write_all(b"xyz").await.unwrap();
    drop(b);
    assert!(matches!(server.await.unwrap(), Err(PowError::Io(_))));

    // Client gets a challenge but a bad verdict byte.
    let (mut a, mut b) = tokio::io::duplex(64);
    let fake_server = tokio::spawn(async move {
        let mut hello = b"CPW1".to_vec();
        hello.push(0);
        hello.extend_from_slice(&[0; 16]);
        a.write_all(&hello).await.unwrap();
        let mut nonce = [0u8; 8];
        a.read_exact(&mut nonce).await.unwrap();
        a.write_all(&[7]).await.unwrap();
    });
    let err = pow::solve(&mut b, 28, T).await.unwrap_err();
    assert!(matches!(err, PowError::Rejected(7)), "{err}");
    fake_server.await.unwrap();
}

#[tokio::test]
async fn silent_peer_times_out() {
    let (mut a, _b) = tokio::io::duplex(64);
    let err = pow::challenge(&mut a, 8, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, PowError::Timeout), "{err}");
    let (_a, mut b) = tokio::io::duplex(64);
    let err = pow::solve(&mut b, 28, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, PowError::Timeout), "{err}");
}

#[tokio::test]
async fn over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        pow::challenge(&mut s, 10, T).await
    });
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    pow::solve(&mut c, 28, T).await.unwrap();
    server.await.unwrap().unwrap();
}
