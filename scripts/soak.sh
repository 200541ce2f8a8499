#!/usr/bin/env bash
# Soak test: runs the `echo` and `http_server` examples and loads them on
# loopback with echo traffic, HTTP keep-alive and pipelined requests,
# clients whose reads time out (partial request heads, unread echoes, then a
# close or a reset) and connection churn, for N minutes (default 10), printing
# each server's RSS, fd and thread counts and the clients' error count every
# 10 s. Flat RSS and fds, and no errors, is the bar.
#
# Usage: scripts/soak.sh [MINUTES]     (PROFILE=release for a release build,
#                                       CORIO_DRIVER=poll for the poll driver)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
PROFILE="${PROFILE:-debug}"
command -v python3 >/dev/null || { echo "error: python3 is needed" >&2; exit 1; }
case "$PROFILE" in
  release) cargo build --release --example echo --example http_server ;;
  *) cargo build --example echo --example http_server ;;
esac
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/examples"
PORT_ECHO="${SOAK_ECHO_PORT:-19000}"
PORT_HTTP="${SOAK_HTTP_PORT:-19080}"
"$BIN/echo" --addr "127.0.0.1:$PORT_ECHO" > /tmp/corio-soak-echo.log 2>&1 &
ECHO_PID=$!
"$BIN/http_server" --addr "127.0.0.1:$PORT_HTTP" --shards 2 > /tmp/corio-soak-http.log 2>&1 &
HTTP_PID=$!
trap 'kill $ECHO_PID $HTTP_PID 2>/dev/null || true' EXIT
sleep 1
for pid in $ECHO_PID $HTTP_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a server did not start:"; cat /tmp/corio-soak-*.log; exit 1; }
done
echo "soak: $MINUTES min, $PROFILE build, driver ${CORIO_DRIVER:-auto}; echo pid $ECHO_PID, http_server pid $HTTP_PID"
status=0
python3 scripts/soak_load.py "${SOAK_SECONDS:-$((MINUTES * 60))}" "127.0.0.1:$PORT_ECHO" $ECHO_PID \
  "127.0.0.1:$PORT_HTTP" $HTTP_PID || status=$?
for pid in $ECHO_PID $HTTP_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a server died during the soak"; status=1; }
done
echo "server stderr lines: echo $(wc -l < /tmp/corio-soak-echo.log), http $(wc -l < /tmp/corio-soak-http.log)"
exit $status
