#!/usr/bin/env bash
# Runs the test suite (the library's unit tests and every integration test,
# both drivers) again and again to find flaky tests, in one or more builds at
# once, so the builds load both cores while they run.
#
#   scripts/stress.sh RUNS CONFIG [CONFIG ...]
#
# CONFIG: debug, release, debug-nouring, release-nouring (the last two build
# with `--cfg corio_no_uring`: the poll driver only). Each config has its own
# target directory and is built before the first run.
# Doc tests are left out: they compile each example again every run and test
# no timing (CI runs them every time).
#
# Every run's output goes to target/stress-logs/CONFIG-N.log; a run that
# fails is listed at the end with the names of its failing tests. The exit
# status is 1 if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:?usage: scripts/stress.sh RUNS CONFIG [CONFIG ...]}"
shift
[ $# -gt 0 ] || { echo "usage: scripts/stress.sh RUNS CONFIG [CONFIG ...]" >&2; exit 2; }
LOGS=target/stress-logs
mkdir -p "$LOGS"

# debug and debug-nouring use the directories `cargo test` and .ci/run use.
target_dir() {
  case "$1" in
    debug) echo target ;;
    debug-nouring) echo target/no-uring ;;
    *) echo "target/stress-$1" ;;
  esac
}

# cargo_for/cargo_build CONFIG ARGS: `cargo test`/`cargo build` in that config.
cargo_build() { CARGO_SUB=build cargo_for "$@"; }

cargo_for() {
  local config="$1"; shift
  local flags=() rustflags=""
  case "$config" in
    debug) ;;
    release) flags=(--release) ;;
    debug-nouring) rustflags="--cfg corio_no_uring" ;;
    release-nouring) flags=(--release); rustflags="--cfg corio_no_uring" ;;
    *) echo "unknown config: $config" >&2; exit 2 ;;
  esac
  if [ "${CARGO_SUB:-test}" = build ]; then
    flags=(build "${flags[@]}")
  else
    flags=(test "${flags[@]}" --lib --tests --no-fail-fast)
  fi
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$(target_dir "$config")" cargo "${flags[@]}" "$@"
}

# One config's runs, one after another; prints "CONFIG N ok|FAILED: tests".
runs() {
  local config="$1" n log failed
  # The example tests run the example programs, which `--tests` does not build.
  { cargo_build "$config" --examples && cargo_for "$config" --no-run; } >"$LOGS/$config-build.log" 2>&1 \
    || { echo "$config build FAILED (see $LOGS/$config-build.log)"; return; }
  for n in $(seq 1 "$RUNS"); do
    log="$LOGS/$config-$n.log"
    local start=$SECONDS
    if cargo_for "$config" >"$log" 2>&1; then
      echo "$config $n ok $((SECONDS - start))s"
    else
      failed=$(grep -E '^test .* \.\.\. FAILED$|^error: test failed' "$log" \
        | sed 's/^test //; s/ \.\.\. FAILED$//; s/^error: test failed, to rerun pass /binary /' \
        | sort -u | tr '\n' ' ')
      echo "$config $n FAILED $((SECONDS - start))s: ${failed:-(see $log)}"
    fi
  done
}

# STRESS_BURN=N: N busy loops at the lowest priority beside the runs, so the
# cores stay busy even while the tests sleep.
BURNERS=()
for _ in $(seq 1 "${STRESS_BURN:-0}"); do
  nice -n 19 sh -c 'while :; do :; done' &
  BURNERS+=($!)
done
trap '[ ${#BURNERS[@]} -eq 0 ] || kill "${BURNERS[@]}" 2>/dev/null' EXIT

for config in "$@"; do
  runs "$config" &
done | tee "$LOGS/summary.txt"
# No `wait`: the pipeline above ends when the last run closes its output,
# and the only background jobs of this shell are the busy loops (a `wait`
# here waited for them: the script never ended with STRESS_BURN set).

echo "== $(grep -c ' ok ' "$LOGS/summary.txt") runs passed, $(grep -c 'FAILED' "$LOGS/summary.txt") failed"
! grep -q FAILED "$LOGS/summary.txt"
