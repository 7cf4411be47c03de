//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/seed-*`: a few
//! genuine encodings per decoder (made with the project's own encoders and keys) and the
//! edge cases of the property tests' regression corpora. Deterministic except for the
//! RA-TLS certificates and the sim quote (fresh keys, random ECDSA nonces).
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```
//!
//! It replaces `seed-*` files only; crash regressions (`crash-*`, `regression-*`) are kept.

use std::path::{Path, PathBuf};

use cocoon_attest::{sim, EvidenceKind, Identity, Measurements};
use cocoon_chain::{Chain, Clock, LocalChain};
use cocoon_fuzz::{chain_registry, ledger::start};
use cocoon_ledger::{
    keypair_from_seed, Address, CounterView, SessionHash, SignedAnchor, Voucher, VoucherOp,
};
use cocoon_proto::money::voucher_to_wire;
use cocoon_proto::*;
use prost::Message;
use serde_json::json;

struct Corpus {
    dir: PathBuf,
    n: usize,
}

impl Corpus {
    fn new(root: &Path, target: &str) -> Corpus {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(p).unwrap();
            }
        }
        Corpus { dir, n: 0 }
    }

    fn add(&mut self, name: &str, bytes: impl AsRef<[u8]>) {
        self.n += 1;
        let file = self.dir.join(format!("seed-{:02}-{name}", self.n));
        std::fs::write(file, bytes).unwrap();
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn proto(root: &Path) {
    let mut c = Corpus::new(root, "proto_messages");
    let key = keypair_from_seed(&[7; 32]).unwrap();
    let voucher = voucher_to_wire(
        &Voucher::new(VoucherOp::ClientCharge, Address::wallet("c"), 12_345).sign(&key),
    );
    let counters = Counters {
        tokens_committed_to_chain: 1,
        tokens_committed_to_db: 2,
        max_tokens: 3,
    };
    let payment = PaymentStatus {
        voucher: Some(voucher.clone()),
        counters: Some(counters),
    };
    let range = Some(ProtocolRange { min: 1, max: 3 });
    let proxy = ProxyParams {
        public_key: vec![1u8; 32].into(),
        owner_address: "owner".into(),
        contract_address: Address::wallet("p").to_hex(),
        protocol_version: 1,
        instance_name: "proxy-1".into(),
    };
    let usage = cocoon_proto::Usage {
        prompt_tokens: 11,
        cached_tokens: 2,
        completion_tokens: 7,
        reasoning_tokens: 1,
    };
    c.add(
        "client-run-request",
        ClientRunRequest {
            request_id: vec![9u8; 16].into(),
            path: "/v1/chat/completions".into(),
            model: "test-model".into(),
            body: br#"{"model":"test-model","messages":[]}"#.to_vec().into(),
            max_tokens: 100,
            max_coefficient: 4000,
            timeout_ms: 120_000,
            stream: true,
        }
        .encode_to_vec(),
    );
    c.add(
        "worker-run-request",
        WorkerRunRequest {
            request_id: vec![8u8; 16].into(),
            path: "/v1/completions".into(),
            body: br#"{"prompt":"x"}"#.to_vec().into(),
            max_tokens: 5,
            coefficient: 1500,
            timeout_ms: 1,
            stream: false,
            voucher: Some(voucher.clone()),
        }
        .encode_to_vec(),
    );
    c.add(
        "client-hello",
        ClientHello {
            owner_address: "o".into(),
            protocol: range,
            instance_name: "c".into(),
        }
        .encode_to_vec(),
    );
    c.add(
        "client-connect-accepted",
        ClientConnectReply {
            result: Some(client_connect_reply::Result::Accepted(ClientAccepted {
                proxy: Some(proxy.clone()),
                client_contract_address: Address::wallet("cc").to_hex(),
                auth: Some(AuthChallenge {
                    nonce: u64::MAX,
                    secret_hash: vec![3u8; 32].into(),
                    open: true,
                }),
                payment: Some(payment.clone()),
            })),
        }
        .encode_to_vec(),
    );
    c.add(
        "client-connect-refused",
        ClientConnectReply {
            result: Some(client_connect_reply::Result::Refused(Refusal {
                code: ErrorCode::Protocol as i32,
                reason: "no".into(),
            })),
        }
        .encode_to_vec(),
    );
    c.add(
        "auth-request",
        AuthRequest {
            method: Some(auth_request::Method::Secret(vec![5u8; 32].into())),
        }
        .encode_to_vec(),
    );
    c.add(
        "auth-reply",
        AuthReply {
            ok: true,
            reason: "r".into(),
            payment: Some(payment.clone()),
        }
        .encode_to_vec(),
    );
    c.add(
        "models-reply",
        ModelsReply {
            models: vec![ModelInfo {
                name: "m".into(),
                model_ids: vec!["m@1:abc".into(), "m@2:def".into()],
                workers: 2,
                min_coefficient: 1000,
                max_coefficient: 2000,
                running_requests: 3,
                max_running_requests: 9,
                hardware: vec![HardwareProfile {
                    gpu_model: "NVIDIA H100".into(),
                    gpu_count: 8,
                    vram_mib: 652_000,
                    ..Default::default()
                }],
            }],
        }
        .encode_to_vec(),
    );
    c.add(
        "worker-hello",
        WorkerToProxy {
            msg: Some(worker_to_proxy::Msg::Hello(WorkerParams {
                owner_address: "w".into(),
                model_id: "m@1:abc".into(),
                coefficient: 1000,
                max_active_requests: 4,
                proxy_count: 1,
                hardware: Some(HardwareProfile {
                    gpu_model: "H100".into(),
                    gpu_count: 8,
                    vram_mib: 81_920,
                    driver: "550".into(),
                    cc_mode: true,
                    cpu_cores: 16,
                    memory_mib: 131_072,
                }),
                protocol: range,
                enabled: true,
                instance_name: "w1".into(),
            })),
        }
        .encode_to_vec(),
    );
    c.add(
        "balance-compare",
        WorkerToProxy {
            msg: Some(worker_to_proxy::Msg::BalanceCompare(BalanceCompare {
                highest_voucher: Some(voucher.clone()),
                counters: Some(counters),
            })),
        }
        .encode_to_vec(),
    );
    c.add(
        "worker-accepted",
        ProxyToWorker {
            msg: Some(proxy_to_worker::Msg::Accepted(WorkerAccepted {
                proxy: Some(proxy),
                worker_contract_address: Address::wallet("wc").to_hex(),
                max_active_requests: 4,
            })),
        }
        .encode_to_vec(),
    );
    c.add(
        "balance-compare-result",
        ProxyToWorker {
            msg: Some(proxy_to_worker::Msg::BalanceCompareResult(
                BalanceCompareResult {
                    ok: false,
                    reason: "rollback".into(),
                    payment: Some(payment),
                },
            )),
        }
        .encode_to_vec(),
    );
    use answer::Part;
    for (name, part) in [
        (
            "answer-head",
            Part::Head(AnswerHead {
                status: 200,
                content_type: "text/event-stream".into(),
            }),
        ),
        (
            "answer-chunk",
            Part::Chunk(AnswerChunk {
                data: b"data: {}\n\n".to_vec().into(),
            }),
        ),
        (
            "answer-end",
            Part::End(AnswerEnd {
                usage: Some(usage),
                cost: Some(Cost {
                    prompt_cost: 1,
                    completion_cost: 2,
                    total_cost: 3,
                    adjusted_tokens: 4,
                }),
                coefficient: 1000,
                usage_from_engine: true,
            }),
        ),
        (
            "answer-error",
            Part::Error(AnswerError {
                code: ErrorCode::Upstream as i32,
                message: "engine".into(),
                usage: Some(usage),
                stream_started: true,
            }),
        ),
    ] {
        c.add(name, Answer { part: Some(part) }.encode_to_vec());
    }
    // Edges of the wire format (from crates/proto/tests/fuzz_decode.rs).
    c.add("overlong-varint", cat(&[&[0x08], &[0xff; 10], &[0x01]]));
    c.add("4gib-length", [0x22, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    c.add("invalid-utf8", [0x12, 0x02, 0xc3, 0x28]);
    c.add("negative-enum", cat(&[&[0x08], &[0xff; 9], &[0x01]]));
    c.add("largest-field-number", [0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    c.add("mismatched-group-end", [0x0b, 0x14]);
    c.add("deep-groups", cat(&[&[0x0b; 200], &[0x0c; 200]]));
    c.add("empty-repeated-entries", [0x0a, 0x00].repeat(500));
    // The most memory per byte the schema allows (104 B/byte, `examples/amplification.rs`).
    c.add(
        "models-one-hardware-each",
        [0x0a, 0x02, 0x42, 0x00].repeat(1000),
    );
}

fn vouchers(root: &Path) {
    let mut c = Corpus::new(root, "vouchers");
    let key = keypair_from_seed(&[7; 32]).unwrap();
    let contract = Address::wallet("contract");
    let signed = |op, n| Voucher::new(op, contract, n).sign(&key);
    let charge = signed(VoucherOp::ClientCharge, 100);
    let last = signed(VoucherOp::WorkerLastPayout, 60);
    let counters = Counters {
        tokens_committed_to_chain: 5,
        tokens_committed_to_db: 12,
        max_tokens: 30,
    };
    // Parameter byte: bits 0-1 expected op, bit 2 other contract, bits 3+ current count.
    c.add(
        "wire-charge-fresh",
        cat(&[&[0], &voucher_to_wire(&charge).encode_to_vec()]),
    );
    c.add(
        "wire-charge-stale",
        cat(&[&[1 << 3], &voucher_to_wire(&charge).encode_to_vec()]),
    );
    c.add(
        "wire-last-repeat",
        cat(&[&[3 | 1 << 3], &voucher_to_wire(&last).encode_to_vec()]),
    );
    c.add(
        "wire-payment-status",
        cat(&[
            &[0],
            &PaymentStatus {
                voucher: Some(voucher_to_wire(&charge)),
                counters: Some(counters),
            }
            .encode_to_vec(),
        ]),
    );
    c.add(
        "wire-balance-compare",
        cat(&[
            &[4],
            &BalanceCompare {
                highest_voucher: Some(voucher_to_wire(&last)),
                counters: Some(counters),
            }
            .encode_to_vec(),
        ]),
    );
    c.add(
        "json-voucher",
        cat(&[&[0], &serde_json::to_vec(&charge).unwrap()]),
    );
    c.add(
        "json-voucher-wrong-op",
        cat(&[&[2], &serde_json::to_vec(&charge).unwrap()]),
    );
    let anchor = SignedAnchor::sign(&key, Address::wallet("p"), 3, SessionHash([4; 32]));
    c.add(
        "json-anchor",
        cat(&[&[0], &serde_json::to_vec(&anchor).unwrap()]),
    );
    let report = CounterView {
        in_memory: 40,
        committed_db: 9,
        committed_chain: 5,
    };
    c.add(
        "json-counter-view",
        cat(&[&[0], &serde_json::to_vec(&report).unwrap()]),
    );
}

fn ledger(root: &Path) {
    let mut c = Corpus::new(root, "ledger_json");
    let s = start();
    for op in &s.ops {
        let text = serde_json::to_vec(op).unwrap();
        let tag: serde_json::Value = serde_json::from_slice(&text).unwrap();
        c.add(tag["op"].as_str().unwrap(), text);
    }
    // A session: charges, a payout, then the close delays.
    let lines: Vec<Vec<u8>> = [10usize, 13, 15]
        .iter()
        .map(|&i| serde_json::to_vec(&s.ops[i]).unwrap())
        .chain([b"700".to_vec(), serde_json::to_vec(&s.ops[16]).unwrap()])
        .collect();
    c.add("session", lines.join(&b'\n'));
    c.add("world", serde_json::to_vec(&s.world).unwrap());
    c.add(
        "root-params",
        serde_json::to_vec(&cocoon_ledger::RootParams::default()).unwrap(),
    );
    c.add("mint-duplicate-field", r#"{"op":"mint","to":"0000000000000000000000000000000000000000000000000000000000000000","amount":1,"amount":2}"#);
    c.add("mint-amount-overflow", r#"{"op":"mint","to":"0000000000000000000000000000000000000000000000000000000000000000","amount":18446744073709551616}"#);
    c.add("peer-counters", r#"{"pending":[[1,2],[0,1]],"in_memory":0,"committed_db":5,"committed_chain":9,"last_seqno":null}"#);
}

fn attest(root: &Path) {
    let mut c = Corpus::new(root, "attest_quote");
    let tdx = |f: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../crates/attest/testdata/tdx")
                .join(f),
        )
        .unwrap()
    };
    let sim_quote = sim::build_quote(&Measurements::for_label("fuzz"), &[0x5a; 64]).unwrap();
    c.add("sim-quote", &sim_quote);
    c.add("tdx-v4-quote", tdx("tdx_quote"));
    c.add("tdx-v5-quote", tdx("tdx_quote_td15ex"));
    c.add("tdx-v4-collateral", tdx("tdx_quote_collateral.json"));
    c.add(
        "policy",
        serde_json::to_vec(&json!({
            "allow_sim": true,
            "allowed_image_hashes": [hex::encode([1u8; 32])],
            "allowed_mrtds": [hex::encode([2u8; 48])],
            "allowed_rtmrs": [[hex::encode([3u8; 48]), hex::encode([4u8; 48]),
                hex::encode([5u8; 48]), hex::encode([6u8; 48])]],
            "pinned_root_ids": [hex::encode([7u8; 32])],
            "accepted_tcb_statuses": ["SWHardeningNeeded"],
        }))
        .unwrap(),
    );
    // Layout edges (offsets per the v4 layout, from crates/attest/tests/fuzz_quote.rs).
    let set = |at: usize, bytes: &[u8]| {
        let mut q = sim_quote.clone();
        q[at..at + bytes.len()].copy_from_slice(bytes);
        q
    };
    c.add("header-only", &sim_quote[..48]);
    c.add("sig-len-max", set(632, &u32::MAX.to_le_bytes()));
    c.add("cert-len-max", set(766, &u32::MAX.to_le_bytes()));
    c.add("cert-type-pck-chain", set(764, &5u16.to_le_bytes()));
    c.add("sim-chain-len-max", set(770, &u32::MAX.to_le_bytes()));
    c.add("version-5-on-v4-body", set(0, &5u16.to_le_bytes()));
}

fn ratls(root: &Path) {
    let mut c = Corpus::new(root, "ratls_cert");
    for (name, kind) in [("none", EvidenceKind::None), ("sim", EvidenceKind::Sim)] {
        let id = Identity::generate(kind, &Measurements::for_label("fuzz")).unwrap();
        c.add(&format!("cert-{name}"), id.cert_der());
    }
    let claims = cocoon_attest::claims::Claims {
        public_key: [9; 32],
        fields: vec![(1, b"proxy".to_vec()), (2, vec![0xab; 32]), (7, vec![])],
    };
    c.add("claims", claims.encode().unwrap());
    c.add("der-indefinite-length", [0x30, 0x80, 0x00, 0x00]);
    c.add("der-huge-length", [0x30, 0x84, 0xff, 0xff, 0xff, 0xff]);
}

fn pow(root: &Path) {
    use cocoon_attest::pow::MAGIC;
    let mut c = Corpus::new(root, "pow_hello");
    let hello = |d: u8, reply: &[u8]| cat(&[&[0], &MAGIC, &[d], &[7; 16], reply]);
    c.add("client-ok", hello(4, &[1]));
    c.add("client-rejected", hello(0, &[2]));
    c.add("client-too-hard", hello(20, &[1]));
    c.add("client-bad-magic", b"\x00CPW2");
    c.add("server-difficulty-0", [1, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    c.add("server-short-nonce", [1, 8, 1, 2, 3]);
}

fn usage(root: &Path) {
    let mut c = Corpus::new(root, "usage_scanner");
    let stream = concat!(
        "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"x\",\"choices\":[{\"usage\":{\"prompt_tokens\":9}}],\"usage\":null}\n\n",
        "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,",
        "\"total_tokens\":18,\"prompt_tokens_details\":{\"cached_tokens\":2},",
        "\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n",
        "data: [DONE]\n\n"
    );
    // Flags (bit 0: streaming), cut seed, stream.
    c.add("sse", cat(&[&[1, 5], stream.as_bytes()]));
    c.add(
        "sse-crlf",
        cat(&[&[1, 9], stream.replace('\n', "\r\n").as_bytes()]),
    );
    c.add(
        "sse-no-space",
        cat(&[&[1, 3], stream.replace("data: ", "data:").as_bytes()]),
    );
    c.add(
        "sse-unterminated",
        cat(&[&[1, 0], b"data: {\"usage\":{\"prompt_tokens\":3}}"]),
    );
    c.add(
        "body",
        cat(&[
            &[0, 7],
            br#"{"id":"x","object":"chat.completion","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}"#,
        ]),
    );
    c.add(
        "deep-nesting",
        cat(&[
            &[1, 2],
            b"data: {\"usage\":{\"prompt_tokens\":1},\"x\":",
            &[b'['; 200],
            &[b']'; 200],
            b"}\n",
        ]),
    );

    let mut c = Corpus::new(root, "usage_cost");
    // Flags (bit 0: inject_json, else the relay; bits 1-2: the cost), cut seed, data.
    c.add("relay-sse", cat(&[&[0, 5], stream.as_bytes()]));
    c.add(
        "relay-sse-crlf",
        cat(&[&[2, 11], stream.replace('\n', "\r\n").as_bytes()]),
    );
    c.add(
        "relay-named-events",
        cat(&[
            &[4, 3],
            b"event: message\nid: 7\ndata: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":1}}\n\n",
            b"data: {\"choices\":[],\ndata: \"usage\":{}}\n\n",
            b"data: {\"choices\": [ ] , \"usage\" : {\"completion_tokens\":2} }\n\ndata: [DONE]\n\n",
        ]),
    );
    c.add(
        "inject-body",
        cat(&[
            &[1, 0],
            br#"{"id":"x","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7}}"#,
        ]),
    );
    c.add(
        "inject-existing-cost",
        cat(&[&[7, 0], br#"{"usage":{"total_cost":1,"a":"\"usage\":{}"}}"#]),
    );
}

fn bodies(root: &Path) {
    // The most memory per byte a `serde_json::Value` costs (~134 B/byte).
    let nested = ["[[[[[[0]]]]]]"; 300].join(",");
    let heavy = format!(r#"{{"model":"m","messages":[{nested}]}}"#);
    let mut c = Corpus::new(root, "worker_body");
    // Parameters: bits 0-2 path (0 chat, 1 completions, 4+ others), bit 3 stream, bits 4-5 cap.
    let chat = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":50}"#;
    c.add("chat", cat(&[&[0], chat]));
    c.add("chat-stream", cat(&[&[8], chat]));
    c.add(
        "chat-completion-tokens",
        cat(&[&[8 | 1 << 4], br#"{"model":"m","messages":[],"max_completion_tokens":9,"max_tokens":"x","stream_options":{"include_usage":false,"x":1}}"#]),
    );
    c.add(
        "completions",
        cat(&[
            &[1 | 3 << 4],
            br#"{"model":"m","prompt":"once upon","max_tokens":null}"#,
        ]),
    );
    c.add(
        "completions-array",
        cat(&[&[9], br#"{"model":"m","prompt":[1,2,3],"stream":"yes"}"#]),
    );
    c.add(
        "other-model",
        cat(&[&[0], br#"{"model":"other","messages":[]}"#]),
    );
    c.add("embeddings", cat(&[&[4], br#"{"model":"m","input":"x"}"#]));
    c.add("nested-arrays", cat(&[&[0], heavy.as_bytes()]));

    let mut c = Corpus::new(root, "client_request");
    for (name, body) in [
        (
            "chat",
            r#"{"model":"test-model","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":100,"max_coefficient":4000,"timeout":30.5}"#,
        ),
        (
            "completion-tokens",
            r#"{"model":"m","max_completion_tokens":5,"max_tokens":"x"}"#,
        ),
        ("max-u32", r#"{"model":"m","max_tokens":4294967295}"#),
        ("timeout-tiny", r#"{"model":"m","timeout":1e-300}"#),
        ("timeout-edge", r#"{"model":"m","timeout":3600.0000001}"#),
        ("minus-zero", r#"{"model":"m","max_tokens":-0}"#),
        ("duplicate-model", r#"{"model":"m","model":""}"#),
    ] {
        c.add(name, body);
    }
    c.add("nested-arrays", heavy);
}

fn chain(root: &Path) {
    let mut c = Corpus::new(root, "chain_http");
    let registry = chain_registry();
    c.add("registry", serde_json::to_vec(registry).unwrap());
    let local = LocalChain::with_clock(registry.clone(), Clock::manual(1_000));
    let alice = Address::wallet("alice");
    let mint = cocoon_ledger::Op::Mint {
        to: alice,
        amount: 10_000_000_000,
    };
    local.submit(mint.clone()).unwrap();
    c.add(
        "history",
        serde_json::to_vec(&local.history(0, 10).unwrap()).unwrap(),
    );
    c.add("tip", serde_json::to_vec(&local.tip().unwrap()).unwrap());
    c.add(
        "state",
        serde_json::to_vec(&*local.world().unwrap()).unwrap(),
    );
    // Requests, one per line.
    let requests = [
        cat(&[b"S", &serde_json::to_vec(&mint).unwrap()]),
        cat(&[
            b"S",
            &serde_json::to_vec(&cocoon_ledger::Op::Transfer {
                from: alice,
                to: Address::wallet("bob"),
                amount: 1,
            })
            .unwrap(),
        ]),
        br#"A{"secs":5}"#.to_vec(),
        b"Hfrom=0&limit=5".to_vec(),
        cat(&[b"B", alice.to_hex().as_bytes()]),
        b"G\x00".to_vec(),
        b"G\x01".to_vec(),
        b"G\x02".to_vec(),
    ];
    c.add("requests", requests.join(&b'\n'));
    c.add("advance-max", br#"A{"secs":18446744073709551615}"#);
    c.add(
        "history-edges",
        b"Hfrom=18446744073709551615&limit=18446744073709551615\nHfrom=%FF\nHlimit=1&limit=2",
    );
    c.add("balance-bad", b"B%00\nBzz");
}

/// The genuine seeds are genuine: certificates verify at ten minutes past their `notBefore`
/// (as `ratls_cert` checks them) and the sim quote at the time `attest_quote` uses.
fn check_seeds(root: &Path) {
    use std::time::{Duration, UNIX_EPOCH};
    use x509_parser::prelude::{FromDer, X509Certificate};
    for name in ["seed-01-cert-none", "seed-02-cert-sim"] {
        let der = std::fs::read(root.join("ratls_cert").join(name)).unwrap();
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        let at =
            UNIX_EPOCH + Duration::from_secs(cert.validity().not_before.timestamp() as u64 + 600);
        let policy = cocoon_attest::Policy::allow_all();
        cocoon_attest::verify_certificate(&der, &policy, at).unwrap();
    }
    let quote = std::fs::read(root.join("attest_quote/seed-01-sim-quote")).unwrap();
    let roots = [sim::sim_root_id()].into();
    sim::verify_quote(&quote, &roots, 1_800_000_000).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    proto(&root);
    vouchers(&root);
    ledger(&root);
    attest(&root);
    ratls(&root);
    pow(&root);
    usage(&root);
    bodies(&root);
    chain(&root);
    check_seeds(&root);
    println!("wrote seeds under {}", root.display());
}
