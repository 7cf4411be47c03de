//! Fuzzing every wire decoder of `cocoon-proto`: prost decoding of every message of
//! `proto/cocoon.proto` (what gRPC hands to a node from its peer), and the money conversions
//! (`money::*_from_wire`), protocol negotiation and text bounding that run on decoded values.
//! Properties:
//!
//! - decoding arbitrary or mutated bytes never panics and allocates at most linearly in the
//!   input (prost checks every length prefix against the bytes present, so a huge length
//!   costs nothing; the constant is the largest element of a repeated field, see
//!   [`max_amplification`]);
//! - whatever decodes re-encodes canonically: decode(encode(m)) == m and encoding is stable;
//! - the money conversions refuse bad values with a message and round-trip good ones.
//!
//! `PROPTEST_CASES=100000 cargo nextest run -p cocoon-proto --test fuzz_decode` for a longer run.

#[path = "../../../tests/fuzz/support.rs"]
mod support;

use cocoon_ledger::{Address, VoucherOp};
use cocoon_proto::money::{
    counters_from_wire, counters_to_wire, voucher_from_wire, voucher_to_wire,
};
use cocoon_proto::*;
use proptest::prelude::*;
use prost::Message;
use support::{assert_linear, config, mutated_from, peak_alloc};

/// Calls `$m!(Type, …)` with every message of the schema.
macro_rules! every_message {
    ($m:ident, $($arg:expr),*) => {
        $m!($($arg),*;
            ProtocolRange, Refusal, Usage, Cost, SignedVoucher, Counters, PaymentStatusRequest,
            PaymentStatus, ProxyParams, ClientRunRequest, WorkerRunRequest, Answer, AnswerHead,
            AnswerChunk, AnswerEnd, AnswerError, ClientHello, ClientConnectReply, ClientAccepted,
            AuthChallenge, AuthRequest, AuthReply, ModelsRequest, ModelsReply, ModelInfo,
            HardwareProfile, WorkerParams, WorkerAccepted, BalanceCompare, BalanceCompareResult,
            WorkerToProxy, ProxyToWorker, HandshakeComplete, HandshakeAck, SetEnabled,
            SetCoefficient)
    };
}

/// Memory per input byte that decoding may legitimately cost: a 2-byte empty entry of a
/// repeated message field becomes one element (plus the `Vec`'s doubling slack).
fn max_amplification() -> usize {
    std::mem::size_of::<ModelInfo>().max(std::mem::size_of::<String>())
}

/// Decodes `raw` as `T`; checks memory, and that a decoded message re-encodes canonically.
fn check<T: Message + Default + PartialEq>(name: &str, raw: &[u8]) -> bool {
    let (decoded, peak) = peak_alloc(|| T::decode(raw));
    assert_linear(name, raw.len(), peak, max_amplification(), 1024);
    let Ok(msg) = decoded else {
        return false;
    };
    let encoded = msg.encode_to_vec();
    // Only negative enum values grow (sign-extended to 10 bytes), at most 2× per field.
    assert!(
        encoded.len() <= 2 * raw.len() + 16,
        "{name}: {} -> {}",
        raw.len(),
        encoded.len()
    );
    let again = T::decode(&encoded[..]).unwrap_or_else(|e| panic!("{name}: re-decode: {e}"));
    assert!(again == msg, "{name}: changed by a round trip");
    assert_eq!(
        again.encode_to_vec(),
        encoded,
        "{name}: encoding not stable"
    );
    true
}

macro_rules! decode_as_all {
    ($raw:expr; $($t:ident),*) => {{
        let raw: &[u8] = $raw;
        let mut ok = 0;
        $(ok += usize::from(check::<$t>(stringify!($t), raw));)*
        ok
    }};
}

/// Decodes `raw` as every message type; returns how many accepted it.
fn decode_all(raw: &[u8]) -> usize {
    every_message!(decode_as_all, raw)
}

fn voucher() -> SignedVoucher {
    SignedVoucher {
        op: VoucherOp::ClientCharge.code(),
        contract_address: Address::wallet("c").to_hex(),
        cumulative_tokens: 12_345,
        signature: vec![7u8; 64].into(),
    }
}

fn payment() -> PaymentStatus {
    PaymentStatus {
        voucher: Some(voucher()),
        counters: Some(Counters {
            tokens_committed_to_chain: 1,
            tokens_committed_to_db: 2,
            max_tokens: 3,
        }),
    }
}

fn proxy_params() -> ProxyParams {
    ProxyParams {
        public_key: vec![1u8; 32].into(),
        owner_address: "owner".into(),
        contract_address: Address::wallet("p").to_hex(),
        protocol_version: 1,
        instance_name: "proxy-1".into(),
    }
}

fn usage() -> cocoon_proto::Usage {
    cocoon_proto::Usage {
        prompt_tokens: 11,
        cached_tokens: 2,
        completion_tokens: 7,
        reasoning_tokens: 1,
    }
}

/// Every field of every top-level message set, encoded: the seeds mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    use answer::Part;
    let range = Some(ProtocolRange { min: 1, max: 3 });
    let mut out = vec![
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
        WorkerRunRequest {
            request_id: vec![8u8; 16].into(),
            path: "/v1/completions".into(),
            body: br#"{"prompt":"x"}"#.to_vec().into(),
            max_tokens: 5,
            coefficient: 1500,
            timeout_ms: 1,
            stream: false,
            voucher: Some(voucher()),
        }
        .encode_to_vec(),
        ClientHello {
            owner_address: "o".into(),
            protocol: range,
            instance_name: "c".into(),
        }
        .encode_to_vec(),
        ClientConnectReply {
            result: Some(client_connect_reply::Result::Accepted(ClientAccepted {
                proxy: Some(proxy_params()),
                client_contract_address: Address::wallet("cc").to_hex(),
                auth: Some(AuthChallenge {
                    nonce: u64::MAX,
                    secret_hash: vec![3u8; 32].into(),
                    open: true,
                }),
                payment: Some(payment()),
            })),
        }
        .encode_to_vec(),
        ClientConnectReply {
            result: Some(client_connect_reply::Result::Refused(Refusal {
                code: ErrorCode::Protocol as i32,
                reason: "no".into(),
            })),
        }
        .encode_to_vec(),
        AuthRequest {
            method: Some(auth_request::Method::Secret(vec![5u8; 32].into())),
        }
        .encode_to_vec(),
        AuthRequest {
            method: Some(auth_request::Method::RegisteredNonce(42)),
        }
        .encode_to_vec(),
        AuthReply {
            ok: true,
            reason: "r".into(),
            payment: Some(payment()),
        }
        .encode_to_vec(),
        ModelsReply {
            models: vec![
                ModelInfo {
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
                };
                2
            ],
        }
        .encode_to_vec(),
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
        WorkerToProxy {
            msg: Some(worker_to_proxy::Msg::BalanceCompare(BalanceCompare {
                highest_voucher: Some(voucher()),
                counters: payment().counters,
            })),
        }
        .encode_to_vec(),
        WorkerToProxy {
            msg: Some(worker_to_proxy::Msg::SetEnabled(SetEnabled {
                enabled: false,
                reason: "engine down".into(),
            })),
        }
        .encode_to_vec(),
        ProxyToWorker {
            msg: Some(proxy_to_worker::Msg::Accepted(WorkerAccepted {
                proxy: Some(proxy_params()),
                worker_contract_address: Address::wallet("wc").to_hex(),
                max_active_requests: 4,
            })),
        }
        .encode_to_vec(),
        ProxyToWorker {
            msg: Some(proxy_to_worker::Msg::BalanceCompareResult(
                BalanceCompareResult {
                    ok: false,
                    reason: "rollback".into(),
                    payment: Some(payment()),
                },
            )),
        }
        .encode_to_vec(),
    ];
    for part in [
        Part::Head(AnswerHead {
            status: 200,
            content_type: "text/event-stream".into(),
        }),
        Part::Chunk(AnswerChunk {
            data: b"data: {}\n\n".to_vec().into(),
        }),
        Part::End(AnswerEnd {
            usage: Some(usage()),
            cost: Some(Cost {
                prompt_cost: 1,
                completion_cost: 2,
                total_cost: 3,
                adjusted_tokens: 4,
            }),
            coefficient: 1000,
            usage_from_engine: true,
        }),
        Part::Error(AnswerError {
            code: ErrorCode::Upstream as i32,
            message: "engine".into(),
            usage: Some(usage()),
            stream_started: true,
        }),
    ] {
        out.push(Answer { part: Some(part) }.encode_to_vec());
    }
    // Concatenations: repeated and merged fields, oneof switches.
    let n = out.len();
    for i in 0..n {
        let mut twice = out[i].clone();
        twice.extend_from_slice(&out[(i + 1) % n]);
        out.push(twice);
    }
    out
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_bytes_decode_cleanly(raw in support::bytes(256)) {
        decode_all(&raw);
    }

    #[test]
    fn mutated_messages_decode_cleanly(raw in mutated_from(seeds(), 8)) {
        decode_all(&raw);
    }

    #[test]
    fn vouchers_from_wire(
        op in prop_oneof![
            Just(VoucherOp::ClientCharge.code()),
            Just(VoucherOp::WorkerLastPayout.code()),
            any::<u32>(),
        ],
        contract in prop_oneof![
            Just(Address::wallet("c").to_hex()),
            Just(Address::wallet("c").to_hex().to_uppercase()),
            "[0-9a-fA-F]{62,66}",
            "\\PC{0,70}",
            // 64 bytes of non-ASCII text: a byte-slicing parser would cut a char in half.
            "[é0-9]{32}",
        ],
        cumulative in any::<u64>(),
        signature in prop_oneof![
            Just(Vec::new()),
            prop::collection::vec(any::<u8>(), 64),
            prop::collection::vec(any::<u8>(), 0..130),
        ],
    ) {
        let wire = SignedVoucher { op, contract_address: contract, cumulative_tokens: cumulative,
            signature: signature.into() };
        match voucher_from_wire(Some(&wire)) {
            Ok(None) => prop_assert!(wire.signature.is_empty() && wire.cumulative_tokens == 0),
            Ok(Some(v)) => {
                let back = voucher_to_wire(&v);
                prop_assert_eq!(back.op, wire.op);
                prop_assert_eq!(back.contract_address, wire.contract_address.to_lowercase());
                prop_assert_eq!(back.cumulative_tokens, wire.cumulative_tokens);
                prop_assert_eq!(back.signature, wire.signature);
            }
            Err(e) => prop_assert!(!e.0.is_empty()),
        }
    }

    #[test]
    fn counters_from_wire_keep_their_order(
        chain in any::<u64>(),
        db in any::<u64>(),
        memory in any::<u64>(),
        present in any::<bool>(),
    ) {
        let c = Counters { tokens_committed_to_chain: chain, tokens_committed_to_db: db,
            max_tokens: memory };
        let wire = present.then_some(&c);
        match counters_from_wire(wire) {
            Ok(view) => {
                prop_assert!(!present || (chain <= db && db <= memory));
                prop_assert_eq!(counters_to_wire(&view), wire.cloned().unwrap_or_default());
            }
            Err(e) => prop_assert!(present && !(chain <= db && db <= memory) && !e.0.is_empty()),
        }
    }

    /// Payment messages as peers send them: decode, then convert, never panic.
    #[test]
    fn decoded_payment_status_converts_cleanly(raw in mutated_from(vec![payment().encode_to_vec()], 8)) {
        if let Ok(p) = PaymentStatus::decode(&raw[..]) {
            let _ = voucher_from_wire(p.voucher.as_ref());
            let _ = counters_from_wire(p.counters.as_ref());
        }
    }

    #[test]
    fn negotiation_and_text_bounds(min in any::<u32>(), max in any::<u32>(), text in "\\PC{0,40}",
        repeat in 0usize..300) {
        match negotiate(Some(&ProtocolRange { min, max })) {
            Ok(v) => prop_assert!(min <= v && v <= max && (PROTOCOL_MIN..=PROTOCOL_MAX).contains(&v)),
            Err(e) => prop_assert!(!e.is_empty()),
        }
        let long = text.repeat(repeat);
        let cut = bounded_text(&long);
        prop_assert!(cut.len() <= MAX_TEXT_BYTES && long.starts_with(cut));
        prop_assert!(long.len() <= MAX_TEXT_BYTES || cut.len() + 4 > MAX_TEXT_BYTES);
    }
}

// ------------------------------------------------------------------ regression corpus

/// Inputs on the edges of the protobuf wire format.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut c: Vec<(&'static str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("field 0", vec![0x00]),
        ("wire type 6", vec![0x0e, 0x00]),
        ("wire type 7", vec![0x0f]),
        (
            "overlong varint",
            [&[0x08][..], &[0xff; 10], &[0x01]].concat(),
        ),
        ("truncated varint", vec![0x08, 0x80]),
        ("4 GiB length", vec![0x22, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        (
            "u64::MAX length",
            [&[0x22][..], &[0xff; 9], &[0x01]].concat(),
        ),
        ("length past end", vec![0x22, 0x05, 0x01]),
        ("invalid UTF-8 string", vec![0x12, 0x02, 0xc3, 0x28]),
        ("negative enum", [&[0x08][..], &[0xff; 9], &[0x01]].concat()),
        (
            "int32 from 5-byte varint",
            vec![0x08, 0xff, 0xff, 0xff, 0xff, 0x0f],
        ),
        (
            "largest field number",
            vec![0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01],
        ),
        ("unterminated group", vec![0x0b]),
        ("mismatched group end", vec![0x0b, 0x14]),
        ("fixed64 truncated", vec![0x09, 0x01, 0x02]),
        ("fixed32 truncated", vec![0x0d, 0x01]),
    ];
    // Groups nested far past prost's recursion limit: an error, never a stack overflow.
    c.push((
        "deep groups",
        [vec![0x0b; 10_000], vec![0x0c; 10_000]].concat(),
    ));
    // Messages nested in unknown fields: skipped without recursion.
    let mut nested = Vec::new();
    for _ in 0..2000 {
        let mut outer = vec![0x7a]; // field 15, length-delimited
        let mut len = nested.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            outer.push(if len > 0 { b | 0x80 } else { b });
            if len == 0 {
                break;
            }
        }
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    c.push(("deep unknown fields", nested));
    // 100k empty ModelInfo entries: the worst memory per input byte the schema allows.
    c.push(("many empty repeated entries", [0x0a, 0x00].repeat(100_000)));
    c.push(("many empty repeated strings", [0x12, 0x00].repeat(100_000)));
    // The same oneof set many times: last one wins, earlier ones are dropped.
    c.push((
        "oneof switched 10k times",
        [0x0a, 0x00, 0x12, 0x00].repeat(10_000),
    ));
    c
}

#[test]
fn regression_corpus() {
    for (name, raw) in corpus() {
        let accepted = decode_all(&raw);
        if name.contains("length") || name.contains("truncated") || name == "field 0" {
            assert_eq!(accepted, 0, "{name}");
        }
    }
    // Every seed decodes as the message it was encoded from and as a handful of others.
    for seed in seeds() {
        assert!(decode_all(&seed) > 0);
    }
    // A length prefix of 4 GiB allocates nothing.
    let (r, peak) =
        peak_alloc(|| ClientRunRequest::decode(&[0x22, 0xff, 0xff, 0xff, 0xff, 0x0f][..]));
    assert!(r.is_err() && peak < 1024, "peak {peak}");
}

/// The measured worst case, so a schema change that makes it worse is seen: a ModelsReply of
/// empty entries costs `size_of::<ModelInfo>()` bytes of memory per input byte. With the 16 MiB
/// message limit, a peer can make a client hold that many times 16 MiB for one reply.
#[test]
fn repeated_field_amplification_is_what_the_schema_implies() {
    let raw = [0x0a, 0x00].repeat(50_000);
    let (reply, peak) = peak_alloc(|| ModelsReply::decode(&raw[..]).unwrap());
    assert_eq!(reply.models.len(), 50_000);
    let per_byte = peak / raw.len();
    assert!(
        per_byte <= max_amplification(),
        "{per_byte} bytes per input byte"
    );
    assert!(per_byte >= std::mem::size_of::<ModelInfo>() / 4);
}
