#!/usr/bin/env bash
# Builds Cocoon and starts a whole local network: client API on http://127.0.0.1:10000/v1.
# Extra arguments go to `cocoon dev` (see `cocoon dev --help`), e.g. --workers 2.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --build-only
cargo build --release -p cocoon
exec ./target/release/cocoon dev "$@"
