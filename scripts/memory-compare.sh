#!/usr/bin/env bash
# Memory limit, side by side: fills `cafe-server --memory SIZEm` and
# `memcached -m SIZE` with the same stream of 100-byte values over the
# memcached binary protocol (scripts/memload.py), then reads them back with
# Zipf(1.0) GETs, and prints a markdown table: items held, RSS, STAT bytes /
# limit_maxbytes / evictions, hit ratio, and cafe/memcached ratios.
#
# Each server gets one worker thread pinned to core 0 (taskset), the loader
# runs on core 1, as in the benchmarks. Ports are picked free, never fixed.
#
# usage: scripts/memory-compare.sh [--memory MIB] [--keys N] [--reads M]
#                                  [--value-size B] [--set-misses]
#   --memory MIB   memory limit for both, in MiB (default 64, memcached's)
#   --keys N       distinct keys written (default 2000000: several times
#                  the limit with 100-byte values)
#   --reads M      GETs in the read phase (default 1000000)
#   --set-misses   read phase SETs every miss (cache-aside), so the eviction
#                  policy shows in the hit ratio, not only the item count
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/memory-compare.sh${*:+ $*}"
memory=64 keys=2000000 reads=1000000 value_size=100 set_misses=""
while [ $# -gt 0 ]; do
  case "$1" in
    --memory) memory=${2:?--memory needs MiB}; shift 2 ;;
    --keys) keys=${2:?}; shift 2 ;;
    --reads) reads=${2:?}; shift 2 ;;
    --value-size) value_size=${2:?}; shift 2 ;;
    --set-misses) set_misses=--set-misses; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$memory" in ''|*[!0-9]*) echo "--memory takes a whole number of MiB, e.g. 64" >&2; exit 2 ;; esac

missing=0
need() {  # need TOOL HOW-TO-INSTALL
  command -v "$1" >/dev/null || { echo "missing $1: $2" >&2; missing=1; }
}
need cargo "install Rust from https://rustup.rs"
need python3 "apt-get install python3"
need memcached "apt-get install memcached"
[ "$missing" = 0 ] || exit 1

# Pinning as in the benchmarks: server on core 0, loader on core 1.
server_pin=() loader_pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  server_pin=(taskset -c 0) loader_pin=(taskset -c 1)
else
  echo "note: no taskset or fewer than 2 cores; running unpinned" >&2
fi
load() { "${loader_pin[@]}" python3 scripts/memload.py "$@"; }

cargo build --release --quiet --bin cafe-server
cafe_bin=${CARGO_TARGET_DIR:-target}/release/cafe-server
cafe_limit=(--memory "${memory}m")
cafe_note=""
if ! "$cafe_bin" --help | grep -q -- '--memory'; then
  cafe_limit=()
  cafe_note="cafe-server has no --memory yet: it ran WITHOUT a limit"
  echo "warning: $cafe_note" >&2
fi
memcached_user=()
[ "$(id -u)" = 0 ] && memcached_user=(-u root)  # memcached refuses root without -u

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

proc_kb() {  # proc_kb PID FIELD: a /proc/PID/status field, in kB
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

stat_of() {  # stat_of FILE NAME: a `name value` line's value, or "-"
  awk -v n="$2" '$1 == n {v = $2} END {print (v == "" ? "-" : v)}' "$1"
}

# run NAME COMMAND...: start a server (@PORT@ in its arguments becomes a
# free port), wait for it, fill, read; the results land in $work/NAME.*
run() {
  local name=$1; shift
  local out=$work/$name port pid args=() a
  port=$(free_port)
  for a in "$@"; do args+=("${a//@PORT@/$port}"); done
  "${server_pin[@]}" "${args[@]}" >"$out.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  if ! load "$port" wait --timeout 10 2>>"$out.log" || ! kill -0 "$pid" 2>/dev/null; then
    echo "$name did not start: ${args[*]}" >&2; cat "$out.log" >&2; exit 1
  fi
  echo "$name (pid $pid, port $port): fill $keys keys" >&2
  load "$port" fill --keys "$keys" --value-size "$value_size" >"$out.fill"
  {
    echo "rss_fill_kb $(proc_kb "$pid" VmRSS)"
    echo "hwm_fill_kb $(proc_kb "$pid" VmHWM)"
    load "$port" stats | sed 's/^/fill_stat_/'
  } >>"$out.fill"
  echo "$name: read $reads Zipf(1.0) GETs${set_misses:+, SET on miss}" >&2
  load "$port" read --keys "$keys" --value-size "$value_size" --reads "$reads" \
    $set_misses >"$out.read"
  {
    echo "rss_read_kb $(proc_kb "$pid" VmRSS)"
    echo "hwm_read_kb $(proc_kb "$pid" VmHWM)"
    load "$port" stats | sed 's/^/read_stat_/'
  } >>"$out.read"
  cat "$out.fill" "$out.read" >"$out.all"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

began=$(date +%s)
run cafe "$cafe_bin" --threads 1 --no-pin "${cafe_limit[@]}" --metrics-listen off --listen 127.0.0.1:@PORT@
run memcached memcached -t 1 -m "$memory" -U 0 -l 127.0.0.1 -p @PORT@ "${memcached_user[@]}"
elapsed=$(( $(date +%s) - began ))

limit_bytes=$(( memory * 1024 * 1024 ))
# row LABEL FORMAT EXPR: one table row. EXPR is an awk expression over one
# server's `name value` pairs, read as v["name"]; a name either lacks
# shows as "-". The ratio column is cafe / memcached.
row() {
  awk -v label="$1" -v fmt="$2" -v limit="$limit_bytes" '
    FNR == 1 { f++ }
    { if (f == 1) c[$1] = $2; else m[$1] = $2 }
    function val(v) { return '"$3"' }
    function show(x) { return x == "-" ? "-" : sprintf(fmt, x) }
    END {
      cv = val(c); mv = val(m)
      r = (cv == "-" || mv == "-" || mv + 0 == 0) ? "-" : sprintf("%.2f", cv / mv)
      printf "| %s | %s | %s | %s |\n", label, show(cv), show(mv), r
    }' "$work/cafe.all" "$work/memcached.all"
}
# stat NAME [ARITH]: the awk expression for v[NAME] ARITH, or "-" if absent
stat() { echo "(\"$1\" in v) ? v[\"$1\"] ${2:-} : \"-\""; }
# per NAME OVER: v[NAME] / v[OVER], or "-"
per() { echo "(\"$1\" in v && v[\"$2\"] > 0) ? v[\"$1\"] / v[\"$2\"] : \"-\""; }

echo
echo "## cafe-server --memory ${memory}m vs memcached -m $memory"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$command_line\`"
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
dirty=$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')
echo "- servers: cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty \`--threads 1 --no-pin ${cafe_limit[*]}\`; $(memcached -V) \`-t 1 -m $memory -U 0\`; server ${server_pin[*]:-unpinned}, loader ${loader_pin[*]:-unpinned}"
echo "- load: $keys keys \`key:{i}\` × $value_size-byte values (SETQ batches + NOOP, in key order), then $reads GETKQ with keys drawn Zipf α=1.0 over all $keys (fixed seed and rank→key permutation)${set_misses:+, every miss SET again}; $elapsed s in all"
if [ -n "$cafe_note" ]; then echo "- **$cafe_note**"; fi
echo
echo "| after the fill | cafe | memcached | cafe/memcached |"
echo "|---|---:|---:|---:|"
row "limit_maxbytes" "%d" "$(stat fill_stat_limit_maxbytes)"
row "curr_items (items held)" "%d" "$(stat fill_stat_curr_items)"
row "items held / keys written" "%.4f" "$(per fill_stat_curr_items fill_keys)"
row "bytes (STAT)" "%d" "$(stat fill_stat_bytes)"
row "bytes / limit" "%.3f" "$(stat fill_stat_bytes '/ limit')"
row "evictions" "%d" "$(stat fill_stat_evictions)"
row "VmRSS (MiB)" "%.1f" "$(stat rss_fill_kb '/ 1024')"
row "VmRSS / limit" "%.3f" "$(stat rss_fill_kb '* 1024 / limit')"
row "VmHWM (MiB)" "%.1f" "$(stat hwm_fill_kb '/ 1024')"
row "RSS bytes per item held" "%.0f" "(\"fill_stat_curr_items\" in v && v[\"fill_stat_curr_items\"] > 0) ? v[\"rss_fill_kb\"] * 1024 / v[\"fill_stat_curr_items\"] : \"-\""
row "fill errors" "%d" "$(stat fill_errors)"
row "fill SET/s (one Python client)" "%d" "$(stat fill_per_second)"
echo
echo "| read phase | cafe | memcached | cafe/memcached |"
echo "|---|---:|---:|---:|"
row "hit ratio" "%.4f" "$(stat read_hit_ratio)"
row "hits" "%d" "$(stat read_hits)"
row "wrong values among hits" "%d" "$(stat read_bad_values)"
row "read errors" "%d" "$(stat read_errors)"
if [ -n "$set_misses" ]; then
  row "SETs of missed keys" "%d" "$(stat read_miss_sets)"
  row "curr_items after read" "%d" "$(stat read_stat_curr_items)"
  row "evictions after read" "%d" "$(stat read_stat_evictions)"
fi
row "VmRSS after read (MiB)" "%.1f" "$(stat rss_read_kb '/ 1024')"
row "VmHWM, peak (MiB)" "%.1f" "$(stat hwm_read_kb '/ 1024')"
row "GET/s (one Python client)" "%d" "$(stat read_per_second)"
echo

# Anything odd, in words under the tables.
for name in cafe memcached; do
  f=$work/$name.all
  for k in fill_errors read_errors read_bad_values; do
    n=$(stat_of "$f" "$k")
    if [ "$n" != "-" ] && [ "$n" != 0 ]; then
      echo "- **$name: $k = $n** $(grep "^${k}_" "$f" | tr '\n' ' ')"
    fi
  done
  if [ "$(stat_of "$f" fill_stat_limit_maxbytes)" = "-" ]; then
    echo "- $name: STAT has no limit_maxbytes"
  fi
  hwm=$(stat_of "$f" hwm_read_kb)
  if [ "$hwm" != "-" ] && [ $(( hwm * 1024 )) -gt "$limit_bytes" ]; then
    awk -v n="$name" -v h="$hwm" -v l="$limit_bytes" -v m="$memory" 'BEGIN {
      printf "- %s: peak RSS %.1f MiB is above the %d MiB limit (%+.0f%%)\n", n, h / 1024, m, (h * 1024 / l - 1) * 100 }'
  fi
done
