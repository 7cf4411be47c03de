#!/usr/bin/env bash
# Installs what building and testing Cocoon needs on a fresh machine. Idempotent.
# Today: only the Rust toolchain (protoc is vendored by the build). Later issues add
# Python/npm tools here, so `dev.sh` and `test.sh` always call this first.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust (https://rustup.rs) and re-run." >&2
  exit 1
fi
