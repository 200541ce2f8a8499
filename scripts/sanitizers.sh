#!/usr/bin/env bash
# corio under the memory checkers, and the loom models.
#
#   scripts/sanitizers.sh [asan] [loom] [valgrind]     (default: all three)
#
# asan      The whole test suite (lib, integration tests, examples; not the
#           doc tests), both drivers, under AddressSanitizer with
#           LeakSanitizer (nightly: `-Zsanitizer=address`, target dir
#           target/asan). Any report fails the run. Skipped, saying so, when
#           no nightly toolchain can be had.
# loom      The loom models of the cross-thread wake-up path and of the sync
#           algorithms (tests/loom_*.rs), and of the task state word
#           (runtime/raw/loom_model.rs), all with `--cfg corio_loom`, target/loom.
# valgrind  A representative subset of the suite under valgrind memcheck:
#           on the poll driver with every check; on io_uring without the
#           uninitialised-value checks, since memcheck cannot see the kernel
#           write into buffers through the rings (every byte a read op
#           fills would look uninitialised), and with CORIO_SPIN_US=max:
#           valgrind 3.19 runs one thread at a time and does not treat
#           io_uring_enter as a blocking call, so a runtime waiting in it
#           would keep every other thread (a test's std client) from running
#           for ever; a runtime that never parks hands the others their turn.
#           Leaks are checked on both. Every binary runs; the summary tells
#           memcheck errors (valgrind's exit code 99) from failed tests
#           (101, e.g. a timing bound that 20-50x slower code misses).
#
# Miri is not run: there is no miri component for the toolchains here.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-gnu
WHAT=("$@")
[ ${#WHAT[@]} -eq 0 ] && WHAT=(asan loom valgrind)
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

asan() {
  if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || {
      echo "== asan: skipped, no nightly toolchain could be installed"
      return 0
    }
  fi
  echo "== asan: the test suite under AddressSanitizer + LeakSanitizer ($(cargo +nightly --version))"
  # halt_on_error: the first report fails the test binary. The test
  # binaries re-run themselves for child-process tests: those are checked
  # too, and their failure fails the parent test.
  # The example binaries first: the tests that run them as processes look
  # for them next to the test binaries (`cargo test --examples` builds them
  # as test harnesses, not as the programs).
  RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR=target/asan \
    cargo +nightly build --target "$TARGET" --examples
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0" \
  RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
  CARGO_TARGET_DIR=target/asan \
    cargo +nightly test --no-fail-fast --target "$TARGET" --lib --tests
}

loom() {
  echo "== loom: models of the wake-up path and the sync algorithms"
  # The wake-up models are small enough to explore completely; the channel
  # model (three threads) is bounded to 3 preemptions per execution, as
  # tokio bounds its models (unbounded, it had not ended after 15 minutes).
  RUSTFLAGS="--cfg corio_loom" CARGO_TARGET_DIR=target/loom \
    cargo test --release --test loom_wake
  # The task state word (runtime/raw.rs on loom's atomics): bounded like
  # the channel model (its three-thread model has not ended unbounded).
  RUSTFLAGS="--cfg corio_loom" CARGO_TARGET_DIR=target/loom \
    LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
    cargo test --release --lib raw::loom_model
  RUSTFLAGS="--cfg corio_loom" CARGO_TARGET_DIR=target/loom \
    LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}" \
    cargo test --release --test loom_sync
}

valgrind_run() {
  local bin="$1"; shift
  echo "-- valgrind $* $(basename "$bin")"
  # --fair-sched=yes: threads take turns in order; with the default lock a
  # spinning runtime thread keeps winning it back and a peer thread starves.
  valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --fair-sched=yes "$@" "$bin" --test-threads=1 -q
}

valgrind_suite() {
  command -v valgrind >/dev/null || { echo "== valgrind: skipped, not installed (apt-get install valgrind)"; return 0; }
  echo "== valgrind memcheck: a representative subset, both drivers"
  local tests=(net_tcp_basic net_read_mix net_pooled net_udp net_unix net_accept_cancel
               sync_channels time runtime_tasks fs_file driver_enter_faults fault_schedules)
  local args=()
  for t in "${tests[@]}"; do args+=(--test "$t"); done
  cargo test --no-run --lib "${args[@]}" 2>&1 | grep -E "^error" && return 1
  local bins=()
  for t in "${tests[@]}"; do
    bins+=("$(cargo test --no-run --test "$t" --message-format=json 2>/dev/null \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]: print(m["executable"])')")
  done
  bins+=("$(cargo test --no-run --lib --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["lib"]: print(m["executable"])')")
  # Fewer seeds: memcheck runs code 20-50 times slower.
  export CORIO_FAULT_SEEDS=10 CORIO_MIX_SEEDS=3 CORIO_ENTER_FAULT_SEEDS=2
  local summary=() memcheck=0 failed=0 rc
  for bin in "${bins[@]}"; do
    for driver in poll uring; do
      rc=0
      if [ "$driver" = poll ]; then
        CORIO_DRIVER=poll valgrind_run "$bin" || rc=$?
      else
        CORIO_DRIVER=uring CORIO_SPIN_US=max valgrind_run "$bin" --undef-value-errors=no || rc=$?
      fi
      summary+=("$driver $(basename "$bin"): exit $rc")
      case $rc in 0) ;; 99) memcheck=$((memcheck + 1)) ;; *) failed=$((failed + 1)) ;; esac
    done
  done
  printf '   %s\n' "${summary[@]}"
  if [ $memcheck -gt 0 ]; then echo "== valgrind: memcheck errors in $memcheck runs"; return 1; fi
  if [ $failed -gt 0 ]; then echo "== valgrind: 0 memcheck errors; tests failed in $failed runs (see above)"; return 1; fi
  echo "== valgrind: 0 errors"
}

for w in "${WHAT[@]}"; do
  case "$w" in
    asan) asan ;;
    loom) loom ;;
    valgrind) valgrind_suite ;;
    *) echo "unknown: $w (asan, loom, valgrind)" >&2; exit 2 ;;
  esac
done
