//! Every message of `crates/proto/proto/cocoon.proto`, as prost decodes it from what a peer
//! sends over gRPC, and what runs on decoded values: the money conversions
//! (`cocoon_proto::money::*_from_wire`), protocol negotiation and text bounding. The same
//! properties as `crates/proto/tests/fuzz_decode.rs`:
//!
//! - decoding never panics and holds at most `2 * size_of::<ModelInfo>()` bytes per input
//!   byte (a 2-byte empty entry of a repeated message field becomes one element, and its own
//!   first repeated entry room for four);
//! - whatever decodes re-encodes canonically: decode(encode(m)) == m, encoding is stable, and
//!   the encoding is at most twice the input (negative enums grow to 10 bytes);
//! - the money conversions refuse bad values with a message and round-trip good ones.
#![no_main]

use cocoon_fuzz::{linear, within};
use cocoon_proto::money::{
    counters_from_wire, counters_to_wire, voucher_from_wire, voucher_to_wire,
};
use cocoon_proto::*;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Memory per input byte that decoding may legitimately cost. The property test allows one
/// `ModelInfo` per byte (a 2-byte empty entry); an entry with one empty hardware profile
/// (`0a 02 42 00`) also allocates room for 4 `HardwareProfile`s, 104 to 128 bytes per input
/// byte (`examples/amplification.rs`), so twice a `ModelInfo` here.
fn max_amplification() -> usize {
    2 * std::mem::size_of::<ModelInfo>().max(std::mem::size_of::<HardwareProfile>())
}

/// Decodes `raw` as `T`; checks the memory bound and the canonical re-encoding.
fn check<T: Message + Default + PartialEq>(name: &'static str, raw: &[u8]) -> Option<T> {
    let msg = within(name, linear(raw.len(), max_amplification(), 1024), || {
        T::decode(raw)
    })
    .ok()?;
    let encoded = msg.encode_to_vec();
    assert!(
        encoded.len() <= 2 * raw.len() + 16,
        "{name}: {} -> {} bytes",
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
    Some(msg)
}

fn voucher(v: Option<&SignedVoucher>) {
    match voucher_from_wire(v) {
        Ok(None) => {
            assert!(v.is_none_or(|v| v.signature.is_empty() && v.cumulative_tokens == 0))
        }
        Ok(Some(ok)) => {
            let wire = v.unwrap();
            let back = voucher_to_wire(&ok);
            assert_eq!(back.op, wire.op);
            assert_eq!(back.contract_address, wire.contract_address.to_lowercase());
            assert_eq!(back.cumulative_tokens, wire.cumulative_tokens);
            assert_eq!(back.signature, wire.signature);
        }
        Err(e) => assert!(!e.0.is_empty()),
    }
}

fn counters(c: Option<&Counters>) {
    match counters_from_wire(c) {
        Ok(view) => assert_eq!(counters_to_wire(&view), c.cloned().unwrap_or_default()),
        Err(e) => {
            let c = c.unwrap();
            assert!(
                c.tokens_committed_to_chain > c.tokens_committed_to_db
                    || c.tokens_committed_to_db > c.max_tokens
            );
            assert!(!e.0.is_empty());
        }
    }
}

fn protocol(range: Option<&ProtocolRange>) {
    match negotiate(range) {
        Ok(v) => {
            let r = range.unwrap();
            assert!(r.min <= v && v <= r.max && (PROTOCOL_MIN..=PROTOCOL_MAX).contains(&v));
        }
        Err(e) => assert!(!e.is_empty()),
    }
}

fn text(s: &str) {
    let cut = bounded_text(s);
    assert!(cut.len() <= MAX_TEXT_BYTES && s.starts_with(cut));
    assert!(s.len() <= MAX_TEXT_BYTES || cut.len() + 4 > MAX_TEXT_BYTES);
}

fn payment(p: Option<&PaymentStatus>) {
    if let Some(p) = p {
        voucher(p.voucher.as_ref());
        counters(p.counters.as_ref());
    }
}

/// Decodes `raw` as every message; what the nodes do next with the money and protocol
/// fields of the ones that decode.
fn decode_all(raw: &[u8]) {
    macro_rules! plain {
        ($($t:ident),*) => { $( check::<$t>(stringify!($t), raw); )* };
    }
    plain!(
        Usage,
        Cost,
        PaymentStatusRequest,
        ProxyParams,
        ClientRunRequest,
        Answer,
        AnswerHead,
        AnswerChunk,
        AnswerEnd,
        AnswerError,
        ClientAccepted,
        AuthChallenge,
        AuthRequest,
        ModelsRequest,
        ModelsReply,
        ModelInfo,
        HardwareProfile,
        WorkerAccepted,
        HandshakeComplete,
        HandshakeAck,
        SetEnabled,
        SetCoefficient
    );
    if let Some(v) = check::<SignedVoucher>("SignedVoucher", raw) {
        voucher(Some(&v));
    }
    if let Some(c) = check::<Counters>("Counters", raw) {
        counters(Some(&c));
    }
    if let Some(p) = check::<PaymentStatus>("PaymentStatus", raw) {
        payment(Some(&p));
    }
    if let Some(r) = check::<ProtocolRange>("ProtocolRange", raw) {
        protocol(Some(&r));
    }
    if let Some(r) = check::<Refusal>("Refusal", raw) {
        text(&r.reason);
    }
    if let Some(r) = check::<WorkerRunRequest>("WorkerRunRequest", raw) {
        voucher(r.voucher.as_ref());
    }
    if let Some(h) = check::<ClientHello>("ClientHello", raw) {
        protocol(h.protocol.as_ref());
        text(&h.owner_address);
        text(&h.instance_name);
    }
    if let Some(r) = check::<ClientConnectReply>("ClientConnectReply", raw) {
        if let Some(client_connect_reply::Result::Accepted(a)) = &r.result {
            payment(a.payment.as_ref());
        }
    }
    if let Some(r) = check::<AuthReply>("AuthReply", raw) {
        payment(r.payment.as_ref());
        text(&r.reason);
    }
    if let Some(p) = check::<WorkerParams>("WorkerParams", raw) {
        protocol(p.protocol.as_ref());
    }
    if let Some(b) = check::<BalanceCompare>("BalanceCompare", raw) {
        voucher(b.highest_voucher.as_ref());
        counters(b.counters.as_ref());
    }
    if let Some(r) = check::<BalanceCompareResult>("BalanceCompareResult", raw) {
        payment(r.payment.as_ref());
    }
    if let Some(m) = check::<WorkerToProxy>("WorkerToProxy", raw) {
        match &m.msg {
            Some(worker_to_proxy::Msg::Hello(p)) => protocol(p.protocol.as_ref()),
            Some(worker_to_proxy::Msg::BalanceCompare(b)) => {
                voucher(b.highest_voucher.as_ref());
                counters(b.counters.as_ref());
            }
            Some(worker_to_proxy::Msg::SetEnabled(s)) => text(&s.reason),
            _ => {}
        }
    }
    if let Some(m) = check::<ProxyToWorker>("ProxyToWorker", raw) {
        if let Some(proxy_to_worker::Msg::BalanceCompareResult(r)) = &m.msg {
            payment(r.payment.as_ref());
        }
    }
}

fuzz_target!(|data: &[u8]| decode_all(data));
