#!/usr/bin/env bash
# A real Prometheus reading cafe, by hand: starts cafe-server with its admin
# listener on loopback, lints the exposition with `promtool check metrics`,
# starts Prometheus scraping it every second, drives --seconds of load with
# cafe-bench (text protocol, a fixed rate), then asks Prometheus for the
# request rate and the server-side p99 of gets and prints them beside
# cafe-bench's own figures. Everything on loopback, ephemeral ports, and
# torn down at the end. tests/prometheus.rs runs the same checks in CI.
#
# usage: scripts/prometheus-check.sh [--seconds S] [--rate R]
# Needs Debian's `prometheus` package (prometheus, promtool) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10 rate=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
need_build
need prometheus "apt-get install prometheus"
need promtool "apt-get install prometheus"
need curl "apt-get install curl"
need python3 "apt-get install python3"
[ "$missing" = 0 ] || exit 1
binaries
start_work

port=$(free_port) admin=$(free_port) web=$(free_port)
"$server_bin" --threads 2 --no-pin --listen "127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$admin" >"$work/cafe.log" 2>&1 &
pids+=("$!"); wait_port "$!" "$port" "$work/cafe.log"
wait_port "${pids[0]}" "$admin" "$work/cafe.log"

echo "== promtool check metrics" >&2
curl -fsS "http://127.0.0.1:$admin/metrics" | promtool check metrics
echo "ok" >&2

cat >"$work/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: cafe
    static_configs: [{targets: ['127.0.0.1:$admin']}]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$web" >"$work/prometheus.log" 2>&1 &
pids+=("$!")
query() {  # query EXPR [TIME]: the first value of an instant query
  curl -fsS --get "http://127.0.0.1:$web/api/v1/query" --data-urlencode "query=$1" \
    ${2:+--data-urlencode "time=$2"} |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
for _ in $(seq 1 300); do
  [ "$(query 'up{job="cafe"}' 2>/dev/null || true)" = 1 ] && break
  sleep 0.1
done
[ "$(query 'up{job="cafe"}')" = 1 ] || { echo "Prometheus never scraped cafe" >&2; cat "$work/prometheus.log" >&2; exit 1; }

echo "== $seconds s of load at $rate req/s" >&2
"$bench_bin" --server "127.0.0.1:$port" --protocol text --rate "$rate" --duration "$seconds" \
  --keys 10000 --preload --no-pin --json >"$work/bench.json"
end=$(date +%s.%N)
sleep 2.5  # two more scrapes, so the last seconds of the load are in
at=$(awk -v e="$end" 'BEGIN { printf "%.3f", e - 1 }')
get_rate=$(query 'sum(rate(cafe_cmd_get_total[5s]))' "$at")
p99=$(query 'histogram_quantile(0.99, sum by (le) (rate(cafe_request_duration_seconds_bucket{command="get"}[5s])))' "$at")
python3 - "$work/bench.json" "$get_rate" "$p99" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
rate, p99 = sys.argv[2], sys.argv[3]
print("| | Prometheus (server side) | cafe-bench (client side) |")
print("|---|---:|---:|")
print(f"| get rate (req/s) | {float(rate):,.0f} | {0.9 * b['throughput']:,.0f} (90% of {b['throughput']:,.0f}) |")
print(f"| p99 of gets (µs) | {1e6 * float(p99):,.0f} | {b['latency_us']['p99']:,.0f} (all requests) |")
EOF
