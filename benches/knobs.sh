#!/usr/bin/env bash
# What corio's ring and executor knobs do to server CPU per request.
#
# Runs the `http_server` (one shard) and `echo` examples pinned to CPU 0 under
# each knob setting, loads them from CPU 1 (wrk for HTTP, a small std echo
# client for echo), and reports server CPU (utime + stime from /proc/PID/stat,
# every thread of the process, SQPOLL's kernel thread included) per request.
# It is a benchmark, not a test: numbers depend on the machine. Every setting
# runs REPS times, the settings taking turns (so drift on a shared machine
# hits all alike); each run prints a row, and a summary gives the medians.
#
# Usage: benches/knobs.sh [SECONDS [REPS]]   (defaults 5 and 3; needs wrk, taskset)
#        ONLY='regex' benches/knobs.sh ...     runs the settings whose name matches
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-5}
REPS=${2:-3}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build -q --release --example http_server --example echo
mkdir -p "$TARGET/knobs"
CLIENT="$TARGET/knobs/echo_client"
rustc --edition 2021 -O -o "$CLIENT" benches/knobs/echo_client.rs
BIN="$TARGET/release/examples"
TICK=$(getconf CLK_TCK)
PORT=18600

# CPU ticks (user + system) used so far by process $1.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME LOAD -- SERVER ARGS...: starts the server on CPU 0, runs the load
# ("http CONNS" or "echo CONNS") on CPU 1, prints one table row.
run() {
    local name=$1 load=$2 conns=$3
    shift 4
    if [ -n "${ONLY:-}" ] && ! [[ "$name" =~ $ONLY ]]; then
        return
    fi
    PORT=$((PORT + 1))
    local addr="127.0.0.1:$PORT"
    taskset -c 0 "$@" --addr "$addr" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.05
    done
    local t0 requests t1
    t0=$(ticks $pid)
    if [ "$load" = http ]; then
        requests=$(taskset -c 1 wrk -t1 -c"$conns" -d"${SECS}s" "http://$addr/" |
            awk '/requests in/ {print $1}')
    else
        requests=$(taskset -c 1 "$CLIENT" "$addr" "$conns" "$SECS")
    fi
    t1=$(ticks $pid)
    kill $pid
    wait $pid 2>/dev/null || true
    awk -v n="$name" -v l="$load" -v c="$conns" -v r="$requests" -v d=$((t1 - t0)) \
        -v hz="$TICK" -v s="$SECS" 'BEGIN {
        printf "%-34s;%-5s;%5d;%10.0f;%8.1f;%9.2f\n", n, l, c, r / s, 100 * d / hz / s, d / hz * 1e6 / r
    }' | tee -a "$ROWS" | tr ';' ' '
}

ROWS=$(mktemp)
trap 'rm -f "$ROWS"' EXIT
header() { printf "%-34s %-5s %5s %10s %8s %9s\n" "setting" "load" "conns" "req/s" "cpu %" "us/req"; }
header
for rep in $(seq "$REPS"); do
for load in "http 64" "echo 32" "echo 1"; do
    set -- $load
    kind=$1 conns=$2
    if [ "$kind" = http ]; then
        server=("$BIN/http_server" --shards 1)
    else
        server=("$BIN/echo")
    fi
    run "default (SI|DEFER_TASKRUN)" $kind $conns -- "${server[@]}"
    run "defer off (SI|COOP_TASKRUN)" $kind $conns -- "${server[@]}" --defer off
    run "defer+coop off (SI only)" $kind $conns -- "${server[@]}" --defer off --coop off
    run "no setup flags" $kind $conns -- "${server[@]}" --defer off --coop off --single-issuer off
    run "default, ring fd not registered" $kind $conns -- "${server[@]}" --register-ring-fd off
    run "default, spin 50 us" $kind $conns -- "${server[@]}" --spin 50
    run "default, max 4 CQEs per tick" $kind $conns -- "${server[@]}" --max-cqes 4
    run "SQPOLL idle 10 ms" $kind $conns -- "${server[@]}" --sqpoll 10
    CORIO_DRIVER=poll run "poll driver (epoll)" $kind $conns -- "${server[@]}"
    CORIO_DRIVER=poll run "poll driver, spin 50 us" $kind $conns -- "${server[@]}" --spin 50
done
done

echo
echo "medians of $REPS runs of ${SECS}s (server on CPU 0, load on CPU 1):"
header
# Group the rows by setting and load (in first-seen order), print the medians.
awk -F';' '
    { key = $1 ";" $2 ";" $3; if (!(key in n)) order[++k] = key
      n[key]++; rps[key, n[key]] = $4; cpu[key, n[key]] = $5; us[key, n[key]] = $6 }
    function median(a, key, m,    i, j, t, v) {
        for (i = 1; i <= m; i++) v[i] = a[key, i] + 0
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    END { for (i = 1; i <= k; i++) { key = order[i]; split(key, f, ";")
        printf "%-34s %-5s %5d %10.0f %8.1f %9.2f\n", f[1], f[2], f[3],
            median(rps, key, n[key]), median(cpu, key, n[key]), median(us, key, n[key]) } }
' "$ROWS"
