//! Measures the memory per input byte of the JSON-reading decoders on their worst known
//! shapes (what the budgets in the fuzz targets must allow).
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --example amplification [BYTES]
//! ```
//!
//! BYTES is the size of each input (default 1 MiB; memory is linear in it, and 4 MiB is the
//! most that stays under the allocator's 256 MiB cap on one allocation).

#[allow(dead_code)]
#[path = "../../crates/worker/src/body.rs"]
mod body;

#[allow(dead_code)]
#[path = "../../crates/client/src/request.rs"]
mod request;

use cocoon_fuzz::peak;

/// `{"model":"m","messages":[<item>,<item>,…]}` of about `size` bytes.
fn body(item: &str, size: usize) -> Vec<u8> {
    let mut b = br#"{"model":"m","messages":["#.to_vec();
    while b.len() < size {
        b.extend_from_slice(item.as_bytes());
        b.push(b',');
    }
    b.pop();
    b.extend_from_slice(b"]}");
    b
}

fn main() {
    println!(
        "size_of::<serde_json::Value>() = {}",
        std::mem::size_of::<serde_json::Value>()
    );
    let size: usize = std::env::args()
        .nth(1)
        .map_or(1 << 20, |s| s.parse().expect("BYTES"));
    let defaults = request::RequestDefaults::default();
    for item in [
        "0",
        "[]",
        "{}",
        "[0]",
        "[[0]]",
        "[[[[[[0]]]]]]",
        "{\"\":0}",
        "{\"\":{\"\":0}}",
        "{\"\":[0]}",
        "\"\"",
    ] {
        let b = body(item, size);
        let (r, worker) = peak(|| body::rewrite("/v1/chat/completions", &b, "m", 100, true));
        assert!(r.is_ok());
        let (r, client) = peak(|| request::parse(&b, &defaults));
        assert!(r.is_ok());
        println!(
            "{item:>16}: worker rewrite {:6.1} B/byte, client parse {:6.1} B/byte",
            worker as f64 / b.len() as f64,
            client as f64 / b.len() as f64
        );
    }
    proto(size);
    typed(size);
}

/// Protobuf: repeated message fields of empty entries (`crates/proto/tests/fuzz_decode.rs`
/// bounds them by `size_of::<ModelInfo>()` per byte).
pub fn proto(size: usize) {
    use cocoon_proto::{HardwareProfile, ModelInfo, ModelsReply};
    use prost::Message;
    println!(
        "size_of ModelInfo {} HardwareProfile {} String {}",
        std::mem::size_of::<ModelInfo>(),
        std::mem::size_of::<HardwareProfile>(),
        std::mem::size_of::<String>()
    );
    for (name, entry) in [
        ("models: empty", &[0x0a, 0x00][..]),
        ("models: one hardware", &[0x0a, 0x02, 0x42, 0x00][..]),
        ("models: one model id", &[0x0a, 0x02, 0x12, 0x00][..]),
        (
            "models: id + hardware",
            &[0x0a, 0x04, 0x12, 0x00, 0x42, 0x00][..],
        ),
    ] {
        let raw = entry.repeat(size / entry.len());
        let (r, p) = peak(|| ModelsReply::decode(&raw[..]));
        assert!(r.is_ok());
        println!("{name:>24}: {:6.1} B/byte", p as f64 / raw.len() as f64);
    }
}

/// Typed serde decoding of the ledger's and chain's JSON (internally tagged `Op`s buffer
/// their content).
pub fn typed(size: usize) {
    use cocoon_ledger::Op;
    let mut deep = br#"{"op":"mint","x":"#.to_vec();
    while deep.len() < size {
        deep.extend_from_slice(b"[[[[[[0]]]]]],");
    }
    deep.pop();
    let mut deep = [b"{\"x\":[".to_vec(), deep[17..].to_vec()].concat();
    deep.extend_from_slice(br#"],"op":"mint","to":"0000000000000000000000000000000000000000000000000000000000000000","amount":1}"#);
    let (r, p) = peak(|| serde_json::from_slice::<Op>(&deep));
    println!(
        "Op with nested arrays before its tag ({}): {:6.1} B/byte",
        r.is_ok(),
        p as f64 / deep.len() as f64
    );
}
