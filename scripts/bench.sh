#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: release build, criterion hot paths, then every `cocoon bench`
# section with the report written as Markdown. Extra arguments go to `cocoon bench`
# (e.g. `./scripts/bench.sh --quick`, `--sections relay`). crates/bench/NOTES.md (analysis of
# the figures, written by hand) is appended. Takes a few minutes; run it on an
# otherwise idle machine, as the figures are timing-sensitive (the load average is recorded).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p cocoon
if [[ " $* " != *" --quick "* ]]; then
  cargo bench -p cocoon-bench --bench hot_paths
fi
criterion_dir="${CARGO_TARGET_DIR:-target}/criterion"
RUST_LOG=error "${CARGO_TARGET_DIR:-target}/release/cocoon" bench --markdown \
  --criterion-dir "$criterion_dir" --notes crates/bench/NOTES.md --out BENCHMARKS.md "$@"
echo "wrote BENCHMARKS.md"
