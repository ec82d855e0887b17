#!/usr/bin/env bash
# Memory and fairness attacks, cafe beside memcached: each attack of
# docs/RELIABILITY.md ("Memory") against a fresh `cafe-server --memory 64m`
# (default flags otherwise) and a fresh `memcached -m 64`, on loopback
# ports picked free, each bounded in time (scripts/attack.py). Prints a
# markdown table: peak, pre- and after-attack RSS (VmHWM / VmRSS; "after"
# is taken 3 s after the server has closed the attack's connections, and
# "drain" is how long that took), a well-behaved probe's p50/p99 during
# the attack, stuck connections and corrupt items, and whether cafe meets
# its targets:
#   peak <= 64 MiB + connection budget + 32 MiB
#   after <= 1.2 x (pre + item bytes the attack stored)
#   probe p99 <= 10 ms, nothing stuck, no kept item corrupt.
#
# usage: scripts/attack.sh [--duration S] [--only ATTACK] [--cafe-only]
#   CAFE_SERVER=path runs that binary instead of building one.
#   attacks: slowloris halfset getnoread getnoread-spread setq appendq
#            randomsets (getnoread-spread runs both servers with 4 threads)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=5 only="" cafe_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --cafe-only) cafe_only=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 1; }
have_memcached=1
command -v memcached >/dev/null || { echo "note: no memcached; cafe only" >&2; have_memcached=0; }
[ "$cafe_only" = 1 ] && have_memcached=0
# 5000 connections need as many descriptors, client and server alike.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# CAFE_SERVER names a prebuilt binary (to compare builds); else build one.
if [ -z "${CAFE_SERVER:-}" ]; then
  cargo build --release --quiet --bin cafe-server
fi
cafe_bin=${CAFE_SERVER:-${CARGO_TARGET_DIR:-target}/release/cafe-server}
conn_budget_mib=64

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 200); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2; return 1
}

server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

run_one() {  # run_one TARGET ATTACK -> `name value` lines
  local target=$1 attack=$2 port threads=() mthreads=()
  port=$(free_port)
  if [ "$attack" = getnoread-spread ]; then threads=(--threads 4); mthreads=(-t 4); fi
  if [ "$target" = cafe ]; then
    RUST_LOG=warn "$cafe_bin" --listen "127.0.0.1:$port" --memory 64m --metrics-listen off "${threads[@]}" &
  else
    memcached -m 64 -u root -l 127.0.0.1 -p "$port" "${mthreads[@]}" &
  fi
  server_pid=$!
  wait_port "$port"
  timeout $((duration * 4 + 60)) python3 scripts/attack.py "$port" "$server_pid" "$attack" \
    --duration "$duration" || echo "attack_failed 1"
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

field() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

attacks=(slowloris halfset getnoread getnoread-spread setq appendq randomsets)
[ -n "$only" ] && attacks=("$only")
echo "| attack | server | peak RSS MiB | pre MiB | after MiB | drain s | probe p50 ms | p99 ms | stuck | corrupt | targets |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for attack in "${attacks[@]}"; do
  targets=(cafe)
  [ "$have_memcached" = 1 ] && targets+=(memcached)
  for target in "${targets[@]}"; do
    out=$(run_one "$target" "$attack")
    peak=$(field peak_rss_kib "$out") pre=$(field pre_rss_kib "$out")
    after=$(field after_rss_kib "$out") stored=$(field stored_bytes_delta "$out")
    drain=$(field drain_s "$out")
    p50=$(field probe_p50_ms "$out") p99=$(field probe_p99_ms "$out")
    stuck=$(field stuck "$out") corrupt=$(field kept_corrupt "$out")
    verdict="-"
    if [ "$target" = cafe ]; then
      verdict=$(awk -v peak="$peak" -v pre="$pre" -v after="$after" -v stored="${stored:-0}" \
        -v p99="$p99" -v stuck="$stuck" -v corrupt="$corrupt" -v budget="$conn_budget_mib" 'BEGIN {
          bad = ""
          if (peak > (64 + budget + 32) * 1024) bad = bad " peak"
          if (stored < 0) stored = 0
          if (after > 1.2 * (pre + stored / 1024)) bad = bad " after"
          if (p99 > 10) bad = bad " p99"
          if (stuck != 0) bad = bad " stuck"
          if (corrupt != 0) bad = bad " corrupt"
          print (bad == "" ? "met" : "MISSED:" bad)
        }')
    fi
    echo "| $attack | $target | $(mib "$peak") | $(mib "$pre") | $(mib "$after") | $drain | $p50 | $p99 | $stuck | $corrupt | $verdict |"
  done
done
