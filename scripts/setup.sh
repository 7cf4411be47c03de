#!/usr/bin/env bash
# Installs what building and testing Cocoon needs on a fresh machine. Idempotent.
# The Rust toolchain (protoc is vendored by the build) and the official OpenAI Python SDK
# for the SDK compatibility test; `dev.sh` and `test.sh` always call this first.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust (https://rustup.rs) and re-run." >&2
  exit 1
fi

# The `openai` package from PyPI, pinned with all its dependencies in
# tests/sdk/requirements.txt, in the project-local .venv-sdk/ (git-ignored); the test
# crates/cocoon/tests/openai_sdk.rs runs .venv-sdk/bin/python. A copy of the requirements
# inside the venv marks a finished install: while it matches, nothing is downloaded.
install_openai_sdk() {
  local venv=.venv-sdk reqs=tests/sdk/requirements.txt
  local stamp="$venv/installed-requirements.txt" python="${PYTHON:-python3}"
  if cmp -s "$reqs" "$stamp" && "$venv/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "error: the OpenAI SDK test needs Python >= 3.10 with pip as \`$python\`" \
      "(set PYTHON=... to choose another)." >&2
    exit 1
  fi
  echo "setup: installing the OpenAI Python SDK ($reqs) into $venv/" >&2
  rm -rf "$venv"
  export PIP_ROOT_USER_ACTION=ignore
  local pip_flags=(--quiet --no-input --disable-pip-version-check -r "$reqs")
  if "$python" -m venv "$venv" >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install "${pip_flags[@]}"
  else
    # No usable venv module (e.g. Debian without python3-venv): install the packages into
    # a plain directory and give it a `bin/python` that puts them on the module path.
    echo "setup: \`$python -m venv\` is unavailable; using pip install --target" >&2
    rm -rf "$venv"
    "$python" -m pip install "${pip_flags[@]}" --no-warn-conflicts --target "$venv/site-packages"
    mkdir -p "$venv/bin"
    local interpreter
    interpreter="$(command -v "$python")"
    cat >"$venv/bin/python" <<WRAPPER
#!/bin/sh
PYTHONPATH="\$(cd "\$(dirname "\$0")/../site-packages" && pwd)\${PYTHONPATH:+:\$PYTHONPATH}" exec "$interpreter" "\$@"
WRAPPER
    chmod +x "$venv/bin/python"
  fi
  cp "$reqs" "$stamp"
}
install_openai_sdk
