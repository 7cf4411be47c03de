#!/usr/bin/env bash
# Bounded fuzzing of every peer-reachable decoder: builds the cargo-fuzz targets in fuzz/ on
# the stable toolchain (`-s none`: libFuzzer's coverage instrumentation without a sanitizer,
# which needs no nightly), then runs each target for a fixed time on its checked-in corpus.
# Exits non-zero on any crash, panic, broken invariant, allocation over budget or hang, and
# prints the input that caused it. See fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to $FUZZ_SECONDS, else 60; 0 only replays the corpus (a quick
# regression check). Environment:
#   FUZZ_JOBS        targets fuzzed side by side (default: the number of cores)
#   FUZZ_MERGE=1     add the inputs that found new coverage to fuzz/corpus/<target>/
#   FUZZ_TIMEOUT     seconds one input may take before it counts as a hang (default 10)
#   FUZZ_RSS_MB      memory limit of one fuzzing process (default 2048)
#   FUZZ_TARGET_DIR  cargo target directory of the fuzz build (default
#                    ~/.cache/cocoon/fuzz-target: kept across clean clones, so a CI run on a
#                    machine that built before only rebuilds what changed)
#   FUZZ_OUT         where logs, new inputs and crashes go (default: a fresh temp directory)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECS="${1:-${FUZZ_SECONDS:-60}}"
shift $(($# > 0 ? 1 : 0))
JOBS="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
TARGET_DIR="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cocoon/fuzz-target}"
case "$SECS" in '' | *[!0-9]*)
  echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
  ;;
esac

# cargo-fuzz, pinned (its own dependencies locked).
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

started=$(date +%s)
echo "fuzz: building the targets ($(rustc --version))" >&2
cargo fuzz build --fuzz-dir fuzz -s none --target-dir "$TARGET_DIR"
built=$(date +%s)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$TARGET_DIR/$triple/release"
for t in "${targets[@]}"; do
  if [ ! -x "$bin_dir/$t" ]; then
    echo "fuzz: no target $t (have: $(cargo fuzz list --fuzz-dir fuzz | tr '\n' ' '))" >&2
    exit 2
  fi
done
out="${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/cocoon-fuzz.XXXXXX")}"
mkdir -p "$out"

# One target: new inputs go to $out/<target>/corpus (libFuzzer writes only to its first
# corpus directory), so the checked-in corpus is read, never changed, unless FUZZ_MERGE=1.
run_target() {
  local t="$1" dir="$out/$1" seeds="fuzz/corpus/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts" "$seeds"
  # Inputs may grow to 4 KiB, or to the largest seed (genuine quotes and collateral).
  local max_len
  max_len=$(find "$seeds" -type f -printf '%s\n' | sort -n | tail -1)
  max_len=$((${max_len:-0} > 4096 ? max_len : 4096))
  local limit=(-max_total_time="$SECS")
  [ "$SECS" -eq 0 ] && limit=(-runs=0)
  local rc=0
  RUST_BACKTRACE=1 "$bin_dir/$t" "${limit[@]}" -max_len="$max_len" -timeout="$TIMEOUT" \
    -rss_limit_mb="$RSS_MB" -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
    "$dir/corpus" "$seeds" >"$dir/log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ] && [ "${FUZZ_MERGE:-0}" = 1 ]; then
    "$bin_dir/$t" -merge=1 -max_len="$max_len" "$seeds" "$dir/corpus" >"$dir/merge.log" 2>&1 || rc=$?
  fi
  echo "$rc" >"$dir/rc"
}

echo "fuzz: ${#targets[@]} targets, ${SECS}s each, $JOBS at a time; logs in $out" >&2
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_target "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
  dir="$out/$t"
  rc="$(cat "$dir/rc" 2>/dev/null || echo 1)"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)"
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-16s ok   %10s inputs\n' "$t" "${runs:-?}"
    continue
  fi
  failed=1
  printf 'fuzz: %-16s FAILED (exit %s)\n' "$t" "$rc"
  echo "----- $t: end of $dir/log"
  tail -n 40 "$dir/log"
  for a in "$dir"/artifacts/*; do
    [ -e "$a" ] || continue
    echo "----- $t: input that failed: $a ($(wc -c <"$a") bytes)"
    echo "      reproduce: $bin_dir/$t $a"
    echo "      keep as a regression: cp $a fuzz/corpus/$t/regression-<what-it-was>"
  done
done
finished=$(date +%s)
echo "fuzz: build $((built - started))s, fuzzing $((finished - built))s" >&2
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED (logs, new inputs and crashes in $out)" >&2
  exit 1
fi
[ -n "${FUZZ_OUT:-}" ] || rm -rf "$out"
echo "fuzz: all targets passed"
