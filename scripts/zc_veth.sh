#!/usr/bin/env bash
# Zero-copy send over a veth pair (issue 17): the sender in this network
# namespace, the sink in a new one, so the bytes cross a (virtual) device
# instead of loopback. Needs root (ip netns, ip link).
#
#   scripts/zc_veth.sh [TOTAL_MIB]     (default 512)
#
# The sink runs pinned to CPU 0, the sender to CPU 1. Everything it creates
# (namespace corio-zc, veth corio-zc0/corio-zc1, 10.211.0.1-2/24) is removed
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-512}
NS=corio-zc
BIN=$(cargo bench --bench zc --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))/\1/p')
[ -x "$BIN" ] || { echo "zc bench binary not found" >&2; exit 1; }

cleanup() {
  [ -n "${SINK:-}" ] && kill "$SINK" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  ip link del corio-zc0 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$NS"
ip link add corio-zc0 type veth peer name corio-zc1
ip link set corio-zc1 netns "$NS"
ip addr add 10.211.0.1/24 dev corio-zc0
ip link set corio-zc0 up
ip netns exec "$NS" ip addr add 10.211.0.2/24 dev corio-zc1
ip netns exec "$NS" ip link set corio-zc1 up
ip netns exec "$NS" ip link set lo up

ip netns exec "$NS" taskset -c 0 "$BIN" --sink 10.211.0.2:7100 &
SINK=$!
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/10.211.0.2/7100) 2>/dev/null && break
  sleep 0.1
done
CORIO_ZC_PEER=10.211.0.2:7100 taskset -c 1 "$BIN" "$MIB"
