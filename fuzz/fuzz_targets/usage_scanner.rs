//! The usage scanner (`cocoon_engine::UsageScanner`), which reads every byte an engine sends
//! back, SSE `data:` lines or a plain JSON body, in chunks split anywhere: the token counts
//! billing is based on. Properties (as in `crates/engine/tests/fuzz_usage.rs`):
//!
//! - nothing panics;
//! - the result does not depend on how the stream is chunked (whole, at the input's cut
//!   points, one byte at a time);
//! - memory stays linear: at most 4 bytes per input byte plus 4 KiB (overlong lines and
//!   oversized bodies are dropped, not buffered).
//!
//! Input: one byte of flags (bit 0: streaming), one byte choosing the cut points, the stream.
#![no_main]

use cocoon_engine::{Usage, UsageScanner};
use cocoon_fuzz::{chunks, linear, split_first, within};
use libfuzzer_sys::fuzz_target;

fn scan(streaming: bool, parts: &[&[u8]]) -> Option<Usage> {
    let mut s = UsageScanner::new(streaming);
    for p in parts {
        s.feed(p);
    }
    s.finish()
}

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = split_first(data);
    let (seed, stream) = split_first(rest);
    let streaming = flags & 1 == 1;
    let whole = within("usage scan", linear(stream.len(), 4, 4096), || {
        scan(streaming, &[stream])
    });
    let chunked = scan(streaming, &chunks(stream, seed));
    assert_eq!(whole, chunked, "chunking changed the result");
    if stream.len() <= 4096 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(
            whole,
            scan(streaming, &bytes),
            "byte-at-a-time changed the result"
        );
    }
});
