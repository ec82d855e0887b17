#!/usr/bin/env bash
# Syscalls per request: runs cafe-server (release) under `strace -c -f`
# while scripts/pipeline_load.py sends pipelined GETs, then prints strace's
# table and the total per request.
#
# strace slows every call, so the server batches more than it would
# unobserved; scripts/syscalls-compare.sh counts with perf instead.
#
# usage: scripts/syscalls.sh [THREADS] [DEPTH] [ROUNDS] [CONNS]
# Environment: CAFE_SERVER names a prebuilt cafe-server (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2} depth=${2:-32} rounds=${3:-2000} conns=${4:-4}

for tool in strace python3 cargo; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install $tool)" >&2; exit 1; }
done
if [ -z "${CAFE_SERVER:-}" ]; then
  cargo build --release --quiet --bin cafe-server
fi
server_bin=${CAFE_SERVER:-${CARGO_TARGET_DIR:-target}/release/cafe-server}

log=$(mktemp) trace=$(mktemp)
"$server_bin" --listen 127.0.0.1:0 --metrics-listen off --threads "$threads" --no-pin 2>"$log" &
server=$!
tracer=""
cleanup() {
  [ -n "$tracer" ] && kill "$tracer" 2>/dev/null || true
  kill -INT "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -f "$log" "$trace"
}
trap cleanup EXIT

# Wait for the start-up line that carries the port (bounded, not a sleep).
port=""
for _ in $(seq 1 200); do
  port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$log" | sed 's/.*://' || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not start:" >&2; cat "$log" >&2; exit 1; }

strace -c -f -p "$server" -o "$trace" &
tracer=$!
sleep 0.5  # let strace attach to every thread before the load starts
out=$(python3 scripts/pipeline_load.py "$port" "$depth" "$rounds" "$conns")
echo "$out" | head -1
kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=""
cat "$trace"
requests=$(echo "$out" | awk '/^requests/ {print $2}')
# columns: % time, seconds, usecs/call, calls, [errors], syscall
calls=$(awk '$NF == "total" {print $4}' "$trace")
echo "threads=$threads depth=$depth conns=$conns: $calls syscalls for $requests requests" \
  "= $(awk -v c="$calls" -v r="$requests" 'BEGIN {printf "%.3f", c / r}') per request"
