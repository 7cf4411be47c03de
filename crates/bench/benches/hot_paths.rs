//! Hot paths of the relay and of link set-up, with criterion:
//! `cargo bench -p cocoon-bench --bench hot_paths`.
//!
//! - SSE usage scanning per chunk (`cocoon_engine::UsageScanner`) on real test-engine output;
//! - sim evidence verification of an RA-TLS certificate (`cocoon_attest::verify_certificate`);
//! - PoW solving at the default difficulty (`cocoon_attest::pow::solve_nonce`);
//! - voucher signing and verification (`cocoon_ledger::Voucher::sign`, `SignedVoucher::verify`).

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cocoon_attest::{pow, EvidenceKind, Identity, Measurements, Policy};
use cocoon_engine::UsageScanner;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn sample(streaming: bool) -> Vec<Bytes> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(cocoon_bench::engine_sample(50, 128, streaming))
}

fn usage_scanning(c: &mut Criterion) {
    let chunks = sample(true);
    let content = chunks
        .iter()
        .find(|b| b.windows(9).any(|w| w == b"\"content\"") && !contains(b, b"\"usage\":{"))
        .expect("a content chunk")
        .clone();
    let usage = chunks
        .iter()
        .find(|b| contains(b, b"\"usage\":{"))
        .expect("a usage chunk")
        .clone();
    let mut g = c.benchmark_group("usage_scan");
    g.throughput(Throughput::Bytes(content.len() as u64));
    g.bench_function("sse_content_chunk", |b| {
        let mut scanner = UsageScanner::new(true);
        b.iter(|| scanner.feed(black_box(&content)))
    });
    g.throughput(Throughput::Bytes(usage.len() as u64));
    g.bench_function("sse_usage_chunk", |b| {
        let mut scanner = UsageScanner::new(true);
        b.iter(|| scanner.feed(black_box(&usage)))
    });
    let total: usize = chunks.iter().map(Bytes::len).sum();
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("sse_stream_50x128", |b| {
        b.iter(|| {
            let mut scanner = UsageScanner::new(true);
            for chunk in &chunks {
                scanner.feed(black_box(chunk));
            }
            scanner.finish().expect("usage found")
        })
    });
    let body: Vec<u8> = sample(false).concat();
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("json_body_50x128", |b| {
        b.iter(|| {
            let mut scanner = UsageScanner::new(false);
            scanner.feed(black_box(&body));
            scanner.finish().expect("usage found")
        })
    });
    g.finish();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn evidence(c: &mut Criterion) {
    cocoon_attest::ensure_crypto_provider();
    let m = Measurements::for_label(cocoon_devnet::WORKER_IMAGE_LABEL);
    let identity = Identity::generate(EvidenceKind::Sim, &m).expect("sim identity");
    let cert: Vec<u8> = identity.cert_der().to_vec();
    let policy = Policy::sim_with_images([m.image_hash()]);
    let mut g = c.benchmark_group("evidence");
    g.bench_function("verify_sim_certificate", |b| {
        b.iter(|| {
            cocoon_attest::verify_certificate(black_box(&cert), &policy, SystemTime::now())
                .expect("verifies")
        })
    });
    // A real Intel TDX quote with its DCAP collateral, at a time inside the collateral's
    // window: uncached = full DCAP verification (signatures, chain, CRLs, TCB); cached = the
    // per-quote-hash cache a proxy hits for every later handshake with the same peer.
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/../attest/testdata/tdx/");
    let quote = std::fs::read(format!("{testdata}tdx_quote")).expect("test quote");
    let source: std::sync::Arc<dyn cocoon_attest::CollateralSource> = std::sync::Arc::new(
        cocoon_attest::FileCollateral::load(std::path::Path::new(&format!(
            "{testdata}tdx_quote_collateral.json"
        )))
        .expect("test collateral"),
    );
    let at = 1_750_332_747;
    let verifier = cocoon_attest::TdxVerifier::new(source.clone());
    g.bench_function("verify_tdx_quote_uncached", |b| {
        b.iter(|| {
            cocoon_attest::TdxVerifier::new(source.clone())
                .verify(black_box(&quote), at)
                .expect("verifies")
        })
    });
    verifier.verify(&quote, at).expect("verifies");
    g.bench_function("verify_tdx_quote_cached", |b| {
        b.iter(|| verifier.verify(black_box(&quote), at).expect("cached"))
    });
    g.sample_size(20);
    g.bench_function("generate_sim_identity", |b| {
        b.iter(|| Identity::generate(EvidenceKind::Sim, black_box(&m)).expect("generates"))
    });
    g.finish();
}

fn proof_of_work(c: &mut Criterion) {
    let mut g = c.benchmark_group("pow");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut seq = 0u64;
    g.bench_function(
        format!("solve_difficulty_{}", pow::DEFAULT_DIFFICULTY),
        |b| {
            b.iter(|| {
                seq += 1;
                let mut salt = [0u8; 16];
                salt[..8].copy_from_slice(&seq.to_le_bytes());
                pow::solve_nonce(black_box(&salt), pow::DEFAULT_DIFFICULTY)
            })
        },
    );
    let salt = [7u8; 16];
    let nonce = pow::solve_nonce(&salt, pow::DEFAULT_DIFFICULTY);
    g.sample_size(100);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("check", |b| {
        b.iter(|| pow::check(black_box(&salt), nonce, pow::DEFAULT_DIFFICULTY))
    });
    g.finish();
}

fn vouchers(c: &mut Criterion) {
    use cocoon_ledger::{keypair_from_seed, public_key, Address, Voucher, VoucherOp};
    let key = keypair_from_seed(&[7u8; 32]).expect("key");
    let public = public_key(&key);
    let contract = Address::wallet("bench-client-contract");
    let mut cumulative = 0u64;
    let mut g = c.benchmark_group("voucher");
    g.bench_function("sign", |b| {
        b.iter(|| {
            cumulative += 1;
            Voucher::new(VoucherOp::ClientCharge, contract, black_box(cumulative)).sign(&key)
        })
    });
    let signed = Voucher::new(VoucherOp::ClientCharge, contract, 1_000).sign(&key);
    g.bench_function("verify", |b| {
        b.iter(|| black_box(&signed).verify(&public).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, usage_scanning, evidence, proof_of_work, vouchers);
criterion_main!(benches);
