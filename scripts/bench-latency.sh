#!/usr/bin/env bash
# Latency against throughput for one cafe-server, measured with cafe-bench:
# finds the server's maximum closed-loop throughput (pipelined), then sweeps
# open-loop rates at 10%, 20%, ... 100% of it (latency from each request's
# intended send time, so queueing shows), prints a markdown table and draws
# p50 / p99 / p99.9 against throughput with scripts/plot_latency.py.
#
# cafe-server gets the flags after `--` (default `--threads 1 --cores 0`;
# the script adds `--listen` on a free port); cafe-bench runs its own pinned
# event loop on --load-cores (default 1). The load: 16 connections, 100,000
# 16-byte keys preloaded, 64-byte values, 90% GET, uniform keys, memcached
# binary protocol unless --protocol says otherwise.
#
# usage: scripts/bench-latency.sh [options] [-- cafe-server flags]
#   --out PNG            the chart (default bench-latency.png); the results,
#                        one JSON object per run, go beside it as .jsonl
#                        (replot: scripts/plot_latency.py FILE.jsonl --out X)
#   --protocol P         cafe-bench's protocol: memcache (memcached binary,
#                        default), native, text or meta (memcached's text
#                        and meta protocols)
#   --connections C      connections in all (default 16)
#   --pipeline D         depth of the closed-loop run that finds the maximum
#                        (default 8)
#   --max-rate R         skip that run: 100% is R requests/s
#   --duration S         seconds of the closed-loop run (default 5)
#   --step-duration S    seconds of each open-loop step (default 4)
#   --warmup S           seconds before measuring, every run (default 1)
#   --steps N            open-loop steps, at 100/N %, 200/N %, ... (default 10)
#   --sweep-to PCT       the last step's rate, in % of the maximum (default
#                        100; above it when the closed loop did not saturate
#                        the server, as round trips can bound it)
#   --load-cores LIST    cores for cafe-bench's threads (default 1)
#   --load-threads N     cafe-bench threads (default 1)
#   --bench "ARGS"       more cafe-bench flags for every run, e.g.
#                        "--distribution zipf --value-size 16-1024"
# Environment: CAFE_BENCH / CAFE_SERVER name prebuilt binaries (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench-latency.sh${*:+ $*}"
out=bench-latency.png protocol=memcache connections=16 pipeline=8 max_rate=""
duration=5 step_duration=4 warmup=1 steps=10 sweep_to=100 load_cores=1 load_threads=1
bench_extra=""
server_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a path}; shift 2 ;;
    --protocol) protocol=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --pipeline) pipeline=${2:?}; shift 2 ;;
    --max-rate) max_rate=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --step-duration) step_duration=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --sweep-to) sweep_to=${2:?}; shift 2 ;;
    --load-cores) load_cores=${2:?}; shift 2 ;;
    --load-threads) load_threads=${2:?}; shift 2 ;;
    --bench) bench_extra=${2?}; shift 2 ;;
    --) shift; server_args=("$@"); break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$protocol" in memcache|native|text|meta) ;; *) echo "--protocol is memcache, native, text or meta" >&2; exit 2 ;; esac
case "$steps" in ''|*[!0-9]*|0) echo "--steps takes a positive whole number" >&2; exit 2 ;; esac
for a in "${server_args[@]}"; do
  case "$a" in --listen|--listen=*) echo "the script picks the address; drop --listen" >&2; exit 2 ;; esac
done
[ ${#server_args[@]} -gt 0 ] || server_args=(--threads 1 --cores 0)

# need, need_build, binaries, pin_load, free_port, wait_port, cpu_ticks, start_work, bench_run
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh  # the scripts run from the repository root
need_build
need python3 "apt-get install python3"
need timeout "apt-get install coreutils"
[ "$missing" = 0 ] || exit 1
plot=1
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  echo "note: no matplotlib for python3 (pip install matplotlib): no chart, the table only" >&2
  plot=0
fi
pin_load "$load_cores" "$load_threads"

binaries
# shellcheck disable=SC2206  # --bench is a list of flags, split on spaces
load_args=(--protocol "$protocol" --connections "$connections" --keys 100000
  --key-size 16 --value-size 64 --get-ratio 0.9 --distribution uniform
  --seed 1 "${load_where[@]}" $bench_extra)

start_work "${out%.png}.jsonl"

# bench PHASE OFFERED ARGS...: one recorded cafe-bench run against the
# server (see bench_run in bench-lib.sh)
bench() {
  local phase=$1 offered=$2; shift 2
  bench_run cafe "$phase" "$offered" "$server_pid" "$work/server.log" \
    --server "127.0.0.1:$port" "${load_args[@]}" "$@"
}

port=$(free_port)
"$server_bin" "${server_args[@]}" --metrics-listen off --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_port "$server_pid" "$port" "$work/server.log"
echo "cafe-server (pid $server_pid, port $port): ${server_args[*]}" >&2

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)
echo "preloading 100000 keys" >&2
bench preload "" --preload --duration 0.001 --warmup 0
if [ -z "$max_rate" ]; then
  echo "closed loop, pipeline $pipeline, ${duration}s" >&2
  bench max "" --pipeline "$pipeline" --duration "$duration" --warmup "$warmup"
  max_rate=$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["throughput"])' "$results")
fi
for i in $(seq 1 "$steps"); do
  rate=$(awk -v m="$max_rate" -v i="$i" -v n="$steps" -v p="$sweep_to" 'BEGIN { printf "%.0f", m * p / 100 * i / n }')
  echo "open loop, step $i/$steps: $rate requests/s, ${step_duration}s" >&2
  bench sweep "$rate" --rate "$rate" --duration "$step_duration" --warmup "$warmup" || true
done
elapsed=$(( $(date +%s) - began ))

echo
echo "## cafe-server latency against throughput"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$command_line\`"
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr); load average at the start: $loadavg"
dirty=$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')
echo "- server: cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty \`cafe-server ${server_args[*]}\`"
echo "- load: \`cafe-bench ${load_args[*]}\`${load_pin[*]:+ under \`${load_pin[*]}\`}; keys preloaded; closed loop at pipeline $pipeline for ${duration}s, then open loop for ${step_duration}s a step, ${warmup}s warm-up each; $elapsed s in all"
echo "- latency in µs, in open loop from each request's intended send time (requests unanswered at the end count at their age then); send lag: how late cafe-bench sent, part of that latency. CPU columns: share of one core over the run, warm-up included, for the server, cafe-bench (in open loop it spins between sends, so there its CPU says nothing about headroom) and every other process on the machine (noise)"
echo
python3 - "$results" "$max_rate" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
top = float(sys.argv[2])

def us(x):
    return "-" if x is None else f"{x:.1f}" if x < 100 else f"{x:,.0f}"

def cpu(r, key):
    return f"{100 * r[key] / r['wall_s']:.0f}%" if r.get("wall_s") else "-"

print("| offered (req/s) | % of max | achieved (req/s) | p50 | p99 | p99.9 | p99.99 | max | send lag p50 | errors "
      "| server CPU | cafe-bench CPU | others' CPU |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
notes = []
saturated = loader_bound = False
for r in rows:
    l = r["latency_us"]
    if r["phase"] == "max":
        first = f"closed loop, pipeline {r['pipeline']}"
        pct = "(max)"
    else:
        first = f"{r['offered_rate']:,.0f}"
        pct = f"{100 * r['offered_rate'] / top:.0f}%"
        if r["throughput"] < 0.95 * r["offered_rate"]:
            first += " ‡"
            saturated = True
    errors = r["errors"] + r.get("verify_failures", 0)
    lag = (r.get("send_lag_us") or {}).get("p50")
    if lag is not None and lag > 0.5 * l["p50"]:
        first += " §"
        loader_bound = True
    print(f"| {first} | {pct} | {r['throughput']:,.0f} | {us(l['p50'])} | {us(l['p99'])} | {us(l['p999'])} "
          f"| {us(l['p9999'])} | {us(l['max'])} | {us(lag)} | {errors} | {cpu(r, 'server_cpu_s')} | {cpu(r, 'load_cpu_s')} "
          f"| {cpu(r, 'other_cpu_s')} |")
    if errors:
        notes.append(f"- **{first}: {r['errors']} errors, {r.get('verify_failures', 0)} verify failures**")
print()
if loader_bound:
    notes.append("- § cafe-bench's own send lag (how late it sent, after each request's intended time) was over "
                 "half the p50: the loader, not the server, bounded that step")
if saturated:
    notes.append("- ‡ achieved less than 95% of the offered rate: past saturation, the queue grows for the whole run")
sweep = [r for r in rows if r["phase"] == "sweep"]
for r in rows:
    if r["phase"] == "max" and r["wall_s"] and r["server_cpu_s"] / r["wall_s"] < 0.8:
        notes.append(f"- the closed-loop run kept the server only {cpu(r, 'server_cpu_s')} busy, so its throughput is "
                     "not the server's capacity (round trips, cafe-bench or other processes bound it); "
                     "`--sweep-to 200` sweeps further")
if sweep:
    last = max(sweep, key=lambda r: r["offered_rate"])
    if last["wall_s"] and last["server_cpu_s"] / last["wall_s"] < 0.8:
        notes.append(f"- at the highest rate the server was only {cpu(last, 'server_cpu_s')} busy: "
                     "the sweep stopped short of its capacity")
missed = [r["phase"] + (f" {r['offered_rate']:,.0f}" if r["offered_rate"] else "") for r in rows if r.get("misses")]
if missed:
    notes.append(f"- GET misses after the preload (evictions?) in: {', '.join(missed)}")
busy = [r for r in rows if r["wall_s"] and r["other_cpu_s"] / r["wall_s"] > 0.1]
if busy:
    worst = max(busy, key=lambda r: r["other_cpu_s"] / r["wall_s"])
    notes.append(f"- **other processes used more than 10% of a core in {len(busy)} of {len(rows)} runs "
                 f"(up to {cpu(worst, 'other_cpu_s')}): the machine was not quiet, trust these figures less**")
steal = sum(r.get("steal_s", 0) for r in rows) / max(sum(r["wall_s"] for r in rows), 1e-9)
if steal > 0.01:
    notes.append(f"- the hypervisor stole {100 * steal:.1f}% of a core on average")
print("\n".join(notes))
EOF

if [ "$plot" = 1 ]; then
  python3 scripts/plot_latency.py "$results" --out "$out" \
    --title "cafe-server ${server_args[*]}: $protocol, $connections connections" >&2 &&
    echo "chart: $out (results: $results)"
fi
