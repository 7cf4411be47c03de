#!/usr/bin/env bash
# Installs what building and testing Cocoon needs on a fresh machine. Idempotent.
# The Rust toolchain (protoc is vendored by the build), cmake and libclang (the built-in
# engine compiles llama.cpp), the official OpenAI Python SDK for the SDK compatibility test,
# and llama.cpp's OpenAI-compatible server (llama-cpp-python) for the third-party engine
# test; `dev.sh` and `test.sh` always call this first.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust (https://rustup.rs) and re-run." >&2
  exit 1
fi

# cmake builds llama.cpp; bindgen needs libclang to read its headers. Debian/Ubuntu
# package names; elsewhere install the equivalents by hand.
install_build_tools() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 \
    && [ -z "${LIBCLANG_PATH:-}" ]; then
    missing+=(libclang-dev)
  fi
  command -v c++ >/dev/null 2>&1 || missing+=(g++)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]} (needed to build llama.cpp)" >&2
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: please install ${missing[*]} (no apt-get here)" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null
  }
}
install_build_tools
# `setup.sh --build-only` (what dev.sh runs) stops here: the rest is for the tests.
[ "${1:-}" = "--build-only" ] && exit 0

# Headless Chromium for the dashboard screenshot test (crates/cocoon/tests/dashboard.rs).
install_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  echo "setup: installing chromium (dashboard test)" >&2
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: please install chromium (no apt-get here)" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get install -y -q chromium >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q chromium >/dev/null
  }
}
install_chromium

# Node.js and npm for the TON contract tests (contracts/: Tolk compiled in-process by
# @ton/tolk-js, run in @ton/sandbox); `npm ci` there installs the pinned packages.
install_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
  echo "setup: installing nodejs and npm (TON contract tests)" >&2
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: please install Node.js >= 18 with npm (no apt-get here)" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get install -y -q nodejs npm >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q nodejs npm >/dev/null
  }
}
install_node
# A copy of the lockfile inside node_modules marks a finished install.
if ! cmp -s contracts/package-lock.json contracts/node_modules/.installed-package-lock.json; then
  echo "setup: installing the contract test packages (contracts/package-lock.json)" >&2
  (cd contracts && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
    cp package-lock.json node_modules/.installed-package-lock.json)
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

# llama-cpp-python[server] in .venv-llama/ for the third-party engine test. PyPI has only
# its source, so the wheel is built once (several minutes) and cached in
# $COCOON_WHEEL_DIR (default ~/.cache/cocoon/wheels). Built portable: a native build picks
# AMX on some server CPUs and crashes on the first decode.
install_llama_cpp_server() {
  local venv=.venv-llama reqs=tests/engines/llama-cpp-server-requirements.txt
  local stamp="$venv/installed-requirements.txt" python="${PYTHON:-python3}"
  if cmp -s "$reqs" "$stamp" && "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
    return 0
  fi
  local wheels="${COCOON_WHEEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cocoon/wheels}"
  local pin
  pin="$(grep -i '^llama[-_]cpp[-_]python==' "$reqs")"
  mkdir -p "$wheels"
  export PIP_ROOT_USER_ACTION=ignore
  if ! ls "$wheels"/llama_cpp_python-"${pin#*==}"-*.whl >/dev/null 2>&1; then
    echo "setup: building $pin from source (once; cached in $wheels) ..." >&2
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
      CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
      "$python" -m pip wheel --quiet --no-input --disable-pip-version-check --no-deps \
      -w "$wheels" "$pin"
  fi
  echo "setup: installing llama.cpp's server ($reqs) into $venv/" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --find-links "$wheels" -r "$reqs"
  cp "$reqs" "$stamp"
}
install_llama_cpp_server
