#!/usr/bin/env bash
# The price of the metrics, measured with cafe-bench: two cafe-servers side
# by side, one scraped by a client that asks for /metrics every
# --scrape-every seconds (100 ms by default: 150 times Prometheus's default
# interval, a stress), one whose admin listener is off. Rounds interleave;
# each round runs closed loop at --pipeline and open loop at --rate, and
# reports throughput, CPU per request and p99 for both, with the ratio
# scraped / not scraped. The histograms are fed whether or not anyone
# scrapes: what this measures is the scrape itself (a gather over every
# worker's inbox and the rendering on the admin thread).
#
# The load, as scripts/bench-routing.sh: 16 connections, 100,000 16-byte
# keys preloaded, 64-byte values, 90% GET, uniform keys, memcached binary
# protocol; both servers on core 0, cafe-bench on --load-cores.
#
# usage: scripts/bench-metrics.sh [options]
#   --rounds N           interleaved rounds (default 3)
#   --pipeline D         requests in flight per connection (default 8)
#   --rate R             open-loop requests per second (default 40000)
#   --duration S         seconds measured per run (default 5)
#   --scrape-every S     seconds between scrapes (default 0.1)
#   --load-cores LIST    cores for cafe-bench's threads (default 1)
#   --out JSONL          the results (default bench-metrics.jsonl)
# Environment: CAFE_BENCH / CAFE_SERVER name prebuilt binaries (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench-metrics.sh${*:+ $*}"
out=bench-metrics.jsonl rounds=3 pipeline=8 rate=40000 duration=5 warmup=1 scrape_every=0.1
load_cores=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a path}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --pipeline) pipeline=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --scrape-every) scrape_every=${2:?}; shift 2 ;;
    --load-cores) load_cores=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "--rounds takes a positive whole number" >&2; exit 2 ;; esac

# need, need_build, binaries, pin_load, free_port, wait_port, start_work, bench_run
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh  # the scripts run from the repository root
need_build
need python3 "apt-get install python3"
need timeout "apt-get install coreutils"
[ "$missing" = 0 ] || exit 1
pin_load "$load_cores" 1
binaries
load_args=(--connections 16 --keys 100000 --key-size 16 --value-size 64
  --get-ratio 0.9 --distribution uniform --seed 1 "${load_where[@]}")
step_duration=$duration
start_work "$out"

labels=(scraped quiet) server_pids=() ports=()
admin_port=$(free_port)
for i in 0 1; do
  port=$(free_port)
  if [ "$i" = 0 ]; then metrics=(--metrics-listen "127.0.0.1:$admin_port"); else metrics=(--metrics-listen off); fi
  "$server_bin" --threads 1 --cores 0 --memory 64m "${metrics[@]}" --listen "127.0.0.1:$port" \
    >"$work/server$i.log" 2>&1 &
  pids+=("$!") server_pids+=("$!") ports+=("$port")
  wait_port "$!" "$port" "$work/server$i.log"
  bench_run "${labels[$i]}" preload "" "$!" "$work/server$i.log" \
    --server "127.0.0.1:$port" "${load_args[@]}" --preload --duration 0.001 --warmup 0
done

# The scraper: GET /metrics every --scrape-every seconds for the whole run.
python3 - "$admin_port" "$scrape_every" >"$work/scrapes" <<'EOF' &
import socket, sys, time
port, every = int(sys.argv[1]), float(sys.argv[2])
n = 0
while True:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: cafe\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    n += 1
    print(n, flush=True)
    time.sleep(every)
EOF
pids+=("$!")

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
  for i in 0 1; do
    echo "round $r/$rounds, ${labels[$i]}: pipeline $pipeline, then $rate req/s" >&2
    bench_run "${labels[$i]}" "closed$r" "" "${server_pids[$i]}" "$work/server$i.log" \
      --server "127.0.0.1:${ports[$i]}" "${load_args[@]}" \
      --pipeline "$pipeline" --duration "$duration" --warmup "$warmup" || true
    bench_run "${labels[$i]}" "open$r" "$rate" "${server_pids[$i]}" "$work/server$i.log" \
      --server "127.0.0.1:${ports[$i]}" "${load_args[@]}" \
      --rate "$rate" --duration "$duration" --warmup "$warmup" || true
  done
done
scrapes=$(tail -n 1 "$work/scrapes" 2>/dev/null || echo 0)

echo
echo "## The metrics' cost: scraped every ${scrape_every}s against not scraped"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$command_line\`"
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); load average at the start: $loadavg"
echo "- server: cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?'), \`--threads 1 --cores 0\`, both servers on core 0; ${scrapes} scrapes in all"
echo
python3 - "$results" "$rounds" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rounds = int(sys.argv[2])
def pick(label, kind):
    return [r for r in runs if r["label"] == label and r["phase"].startswith(kind)]
def med(rs, f):
    v = [f(r) for r in rs if r]
    return statistics.median(v) if v else float("nan")
cpu_per_req = lambda r: 1e6 * r["server_cpu_s"] / max(r["requests"], 1)
print("| load | measure | scraped | not scraped | ratio |")
print("|---|---|---:|---:|---:|")
for kind, name in (("closed", "closed loop"), ("open", "fixed rate")):
    a, b = pick("scraped", kind), pick("quiet", kind)
    rows = [("throughput (req/s)", lambda r: r["throughput"]),
            ("server CPU per request (µs)", cpu_per_req),
            ("p99 (µs)", lambda r: r["latency_us"]["p99"])]
    for label, f in rows:
        x, y = med(a, f), med(b, f)
        print(f"| {name} | {label} | {x:,.2f} | {y:,.2f} | {x / y:.3f} |")
noisy = [r for r in runs if r["wall_s"] and r["other_cpu_s"] / r["wall_s"] > 0.1]
if noisy:
    print(f"- other processes used more than 10% of a core in {len(noisy)} of {len(runs)} runs (the scraper counts there)")
EOF
