#!/usr/bin/env bash
# Fleets side by side in one run: three cafe nodes and three memcached
# nodes, each fleet behind its own twemproxy (nutcracker), measured with
# cafe-bench over memcached's text protocol (the protocol twemproxy
# proxies), and the same fleets driven directly by cafe-bench --servers
# (client-side ketama, the placement twemproxy uses), which isolates the
# proxy's own cost. Fleets come from scripts/cluster.sh, on loopback only
# (nodes on 127.0.0.2-4, proxies on 127.0.0.1), ports free ones.
#
# Four targets, runs interleaved:
#   cafe-proxy        cafe-bench --server PROXY   -> twemproxy -> 3 cafe
#   memcached-proxy   cafe-bench --server PROXY   -> twemproxy -> 3 memcached
#   cafe-direct       cafe-bench --servers A,B,C  -> 3 cafe
#   memcached-direct  cafe-bench --servers A,B,C  -> 3 memcached
# Two phases: the closed-loop maximum (throughput, p50, p99) and an open
# loop at one rate for all four (p50, p99, p99.9; by default half the
# lowest closed-loop maximum, so every target can sustain it). CPU per
# request of the nodes and of the proxy is read from /proc over each run.
# Prints a markdown table and the ratios proxy / direct (the proxy's
# overhead) and cafe / memcached behind the proxy. With --repeat N the
# whole interleaved sequence runs N times and the tables give medians (and
# the closed-loop range), which a shared, noisy machine needs.
#
# The load: 16 connections, 100,000 16-byte keys preloaded, 64-byte
# values, 90% GET, uniform keys; nodes `--threads 1` / `-t 1`.
#
# usage: scripts/bench-fleet.sh [options]
#   --duration S        seconds measured per run (default 3)
#   --warmup S          seconds before measuring (default 1)
#   --connections C     connections in all (default 16)
#   --pipeline P        closed loop: requests in flight per connection
#                       (default 1)
#   --rate R            the open-loop rate (default: half the lowest
#                       closed-loop maximum)
#   --server-cores L    cores of the nodes and proxies (default 0)
#   --load-core N       cafe-bench's core (default 1)
#   --repeat N          rounds of every run (default 1); medians reported
#   --out FILE          the runs, one JSON object each (default: kept in
#                       a scratch directory, removed at the end)
# Environment: CAFE_BENCH / CAFE_SERVER name prebuilt binaries (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench-fleet.sh${*:+ $*}"
duration=3 warmup=1 connections=16 pipeline=1 rate="" server_cores=0 load_core=1 out="" repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --pipeline) pipeline=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --server-cores) server_cores=${2:?}; shift 2 ;;
    --load-core) load_core=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# need, need_build, binaries, pin_load, free_port, cpu_ticks, start_work
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
need_build
need python3 "apt-get install python3"
need memcached "apt-get install memcached"
need timeout "apt-get install coreutils"
command -v nutcracker >/dev/null || [ -x /usr/sbin/nutcracker ] \
  || { echo "missing nutcracker: apt-get install nutcracker" >&2; missing=1; }
[ "$missing" = 0 ] || exit 1
pin_load "$load_core" 1
cores_flag=()
[ ${#load_pin[@]} -eq 0 ] || cores_flag=(-c "$server_cores")

binaries
export CAFE_SERVER=$server_bin
start_work "$out"

# Fleets: label prefix, state directory, proxy and node addresses.
declare -A dir_of target_of
fleets_up=()
stop_fleets() {
  local d
  for d in "${fleets_up[@]}"; do scripts/cluster.sh stop -d "$d" >/dev/null 2>&1 || true; done
}
trap 'stop_fleets; cleanup' EXIT
for engine in cafe memcached; do
  d=$work/$engine port=$(free_port) proxy=$(free_port)
  scripts/cluster.sh start --engine "$engine" -n 3 -p "$port" -P "$proxy" -S "$(free_port)" \
    -d "$d" "${cores_flag[@]}" >&2
  fleets_up+=("$d")
  dir_of[$engine-proxy]=$d dir_of[$engine-direct]=$d
  target_of[$engine-proxy]="--server 127.0.0.1:$proxy"
  target_of[$engine-direct]="--servers 127.0.0.2:$port,127.0.0.3:$port,127.0.0.4:$port"
done
targets=(cafe-proxy memcached-proxy cafe-direct memcached-direct)

load_args=(--protocol text --connections "$connections" --keys 100000 --key-size 16
  --value-size 64 --get-ratio 0.9 --distribution uniform --seed 1 "${load_where[@]}")

# fleet_ticks DIR: "NODES PROXY" CPU ticks so far of the fleet in DIR
fleet_ticks() {
  local n=0 p f
  for f in "$1"/node*.pid; do n=$(( n + $(cpu_ticks "$(cat "$f")") )); done
  p=$(cpu_ticks "$(cat "$1/proxy.pid")")
  echo "$n $p"
}

# run TARGET PHASE OFFERED ARGS...: one cafe-bench run, its JSON with the
# label, phase, offered rate and the fleet's CPU seconds appended to
# $results
run() {
  local label=$1 phase=$2 offered=$3; shift 3
  local d=${dir_of[$label]} tag="$label-$phase" before after limit
  limit=$(awk -v d="$duration" -v w="$warmup" 'BEGIN { print int(d + w + 120) }')
  before=$(fleet_ticks "$d")
  # shellcheck disable=SC2086  # the target is two words
  "${load_pin[@]}" timeout "$limit" "$bench_bin" ${target_of[$label]} "${load_args[@]}" "$@" --json \
    >"$work/$tag.json" 2>"$work/$tag.err" \
    || { echo "cafe-bench failed against $label ($phase)" >&2; cat "$work/$tag.err" >&2; exit 1; }
  after=$(fleet_ticks "$d")
  [ "$phase" != preload ] || return 0
  python3 - "$work/$tag.json" "$results" "$label" "$phase" "$offered" "$before" "$after" "$tick" <<'EOF'
import json, sys
src, dst, label, phase, offered, before, after, tick = sys.argv[1:]
(n0, p0), (n1, p1) = map(int, before.split()), map(int, after.split())
r = json.loads([l for l in open(src).read().splitlines() if l.startswith("{")][-1])
r.update(label=label, phase=phase, offered_rate=float(offered) if offered else None,
         nodes_cpu_s=(n1 - n0) / int(tick), proxy_cpu_s=(p1 - p0) / int(tick))
with open(dst, "a") as f:
    f.write(json.dumps(r) + "\n")
EOF
}

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)
for t in cafe-proxy memcached-proxy; do
  echo "$t: preloading 100000 keys through the proxy" >&2
  run "$t" preload "" --preload --duration 0.001 --warmup 0
done
for round in $(seq 1 "$repeat"); do
  for t in "${targets[@]}"; do
    echo "round $round/$repeat, $t: closed loop, pipeline $pipeline, ${duration}s" >&2
    run "$t" max "" --pipeline "$pipeline" --duration "$duration" --warmup "$warmup"
  done
  if [ -z "$rate" ]; then
    rate=$(python3 -c '
import json, sys
print(round(min(r["throughput"] for r in map(json.loads, open(sys.argv[1])) if r["phase"] == "max") / 2))' "$results")
  fi
  for t in "${targets[@]}"; do
    echo "round $round/$repeat, $t: open loop at $rate requests/s, ${duration}s" >&2
    run "$t" rate "$rate" --rate "$rate" --duration "$duration" --warmup "$warmup"
  done
done
elapsed=$(( $(date +%s) - began ))

echo
echo "## Fleets of three behind twemproxy: cafe against memcached"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$command_line\`"
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr); load average at the start: $loadavg"
dirty=$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')
echo "- nodes: 3 × cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty \`--threads 1 --no-pin\`, 3 × $(memcached -V) \`-t 1 -m 64 -U 0\`; $(nutcracker -V 2>&1 | head -1 | sed 's/^This is //') in front of each fleet (ketama, md5); nodes and proxies ${cores_flag[*]:+under taskset -c $server_cores}"
echo "- load: \`cafe-bench ${load_args[*]}\`${load_pin[*]:+ under \`${load_pin[*]}\`}; ${warmup}s warm-up, ${duration}s measured a run; $repeat round(s), runs interleaved; $elapsed s in all"
echo "- Medians over the rounds (closed-loop range in brackets). Latency in µs (open loop: from each request's intended send time). CPU: µs of CPU per request in the closed-loop runs, nodes together and the proxy."
echo
python3 - "$results" "$rate" "$warmup" "${targets[@]}" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rate, warmup, T = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
def each(label, phase):
    return [r for r in runs if r["label"] == label and r["phase"] == phase]
def med(label, phase, f):
    return statistics.median(f(r) for r in each(label, phase))
thr = lambda r: r["throughput"]
lat = lambda q: (lambda r: r["latency_us"][q])
# CPU per request over a closed-loop run (the busiest); the CPU was read
# over warm-up and measurement, the requests counted over the measurement.
served = lambda r: max(r["requests"] * (r["duration_s"] + warmup) / r["duration_s"], 1)
ncpu = lambda r: r["nodes_cpu_s"] / served(r) * 1e6
pcpu = lambda r: r["proxy_cpu_s"] / served(r) * 1e6
allcpu = lambda r: ncpu(r) + pcpu(r)
print(f"| target | closed loop req/s | p50 | p99 | open loop at {rate:.0f}/s: p50 | p99 | p99.9 | nodes CPU µs/req | proxy CPU µs/req |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in T:
    span = [thr(r) for r in each(t, "max")]
    rng = f" [{min(span):.0f}-{max(span):.0f}]" if len(span) > 1 else ""
    print(f"| {t} | {med(t, 'max', thr):.0f}{rng} | {med(t, 'max', lat('p50')):.0f} | {med(t, 'max', lat('p99')):.0f} "
          f"| {med(t, 'rate', lat('p50')):.0f} | {med(t, 'rate', lat('p99')):.0f} | {med(t, 'rate', lat('p999')):.0f} "
          f"| {med(t, 'max', ncpu):.2f} | {med(t, 'max', pcpu):.2f} |")
print()
print("| ratio (of medians) | closed loop req/s | open loop p50 | open loop p99 | CPU µs/req, all |")
print("|---|---:|---:|---:|---:|")
for a, b, what in [("cafe-proxy", "cafe-direct", "cafe: proxied / direct"),
                   ("memcached-proxy", "memcached-direct", "memcached: proxied / direct"),
                   ("cafe-proxy", "memcached-proxy", "behind the proxy: cafe / memcached"),
                   ("cafe-direct", "memcached-direct", "direct: cafe / memcached")]:
    ratio = lambda phase, f: med(a, phase, f) / med(b, phase, f)
    print(f"| {what} | {ratio('max', thr):.2f} | {ratio('rate', lat('p50')):.2f} "
          f"| {ratio('rate', lat('p99')):.2f} | {ratio('max', allcpu):.2f} |")
# A few requests in flight when an open-loop run ends are normal; more
# than 1% means a target could not keep up.
bad = sorted({r["label"] + "/" + r["phase"] for r in runs
              if r["errors"] or r["misses"] or r["unanswered"] > r["requests"] / 100})
if bad:
    print()
    print(f"Warning: errors, misses or over 1% unanswered requests in {', '.join(bad)}.")
EOF
