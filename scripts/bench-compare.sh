#!/usr/bin/env bash
# cafe-server against memcached, side by side, measured with cafe-bench:
# `memcached -t 1` and `cafe-server --threads 1`, both pinned to the same
# core, the load pinned to another, runs interleaved (by default memcached
# over its binary protocol, cafe over the memcached binary protocol, cafe
# over its native protocol, then the next step; with --text memcached over
# its text protocol, cafe over the text protocol, cafe over the meta
# protocol). Prints markdown tables: the maximum closed-loop throughput at
# pipeline 8 and at pipeline 1 with each server's capacity there (requests
# per second of server CPU over the measured window, cafe-bench
# --server-pid), the server CPU time per request at a fixed
# open-loop rate (utime + stime from /proc/PID/stat over the run /
# requests), and an open-loop sweep at 10%, 20%, ... 100% of the highest
# pipeline-8 maximum, with throughput, p50, p99 and p99.9 side by side and
# as ratios cafe / memcached.
#
# The load, as scripts/bench-latency.sh: 16 connections, 100,000 16-byte
# keys preloaded, 64-byte values, 90% GET, uniform keys. Ports are free ones.
#
# usage: scripts/bench-compare.sh [options]
#   --text               memcached's text protocols instead of the binary
#                        ones: memcached-text (memcached on its default
#                        -B auto, `get`/`set`), cafe-text (the same
#                        commands to cafe) and cafe-meta (`mg`/`ms` to
#                        cafe; cafe-server must speak them); without it
#                        memcached (`-B binary`), cafe-memcache and
#                        cafe-native
#   --out PNG            chart of all three curves (default
#                        bench-compare.png; skipped without matplotlib);
#                        the results, one JSON object per run, beside it
#                        as .jsonl
#   --connections C      connections in all (default 16)
#   --max-rate R         100% of the sweep is R requests/s (default: the
#                        highest pipeline-8 maximum of the three)
#   --cpu-rate R         open-loop rate of the CPU-per-request runs
#                        (default 40000)
#   --duration S         seconds of each closed-loop and CPU run (default 5)
#   --step-duration S    seconds of each open-loop step (default 4)
#   --warmup S           seconds before measuring (default 1; the CPU runs
#                        have none, so the CPU counted is the requests')
#   --steps N            open-loop steps (default 10)
#   --sweep-to PCT       the last step's rate, in % of that maximum (default
#                        100; above it when the closed loop did not saturate
#                        the servers, as round trips can bound it)
#   --server-core N      the core of both servers (default 0)
#   --load-core N        cafe-bench's core (default 1)
#   --bench "ARGS"       more cafe-bench flags for every run
# Environment: CAFE_BENCH / CAFE_SERVER name prebuilt binaries (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench-compare.sh${*:+ $*}"
out=bench-compare.png connections=16 max_rate="" cpu_rate=40000 text=0
duration=5 step_duration=4 warmup=1 steps=10 sweep_to=100 server_core=0 load_core=1
bench_extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a path}; shift 2 ;;
    --text) text=1; shift ;;
    --connections) connections=${2:?}; shift 2 ;;
    --max-rate) max_rate=${2:?}; shift 2 ;;
    --cpu-rate) cpu_rate=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --step-duration) step_duration=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --sweep-to) sweep_to=${2:?}; shift 2 ;;
    --server-core) server_core=${2:?}; shift 2 ;;
    --load-core) load_core=${2:?}; shift 2 ;;
    --bench) bench_extra=${2?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$steps" in ''|*[!0-9]*|0) echo "--steps takes a positive whole number" >&2; exit 2 ;; esac

# need, need_build, binaries, pin_load, memcached_for, free_port, wait_port, cpu_ticks, start_work, bench_run
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh  # the scripts run from the repository root
need_build
need python3 "apt-get install python3"
need memcached "apt-get install memcached"
need timeout "apt-get install coreutils"
[ "$missing" = 0 ] || exit 1
plot=1
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  echo "note: no matplotlib for python3 (pip install matplotlib): no chart, the tables only" >&2
  plot=0
fi
pin_load "$load_core" 1
server_pin=() cafe_where=(--no-pin)
if [ ${#load_pin[@]} -gt 0 ]; then  # the servers are pinned when the load is
  server_pin=(taskset -c "$server_core") cafe_where=(--cores "$server_core")
fi

binaries
# shellcheck disable=SC2206  # --bench is a list of flags, split on spaces
load_args=(--connections "$connections" --keys 100000 --key-size 16
  --value-size 64 --get-ratio 0.9 --distribution uniform --seed 1
  "${load_where[@]}" $bench_extra)

start_work "${out%.png}.jsonl"

# The three targets: label, server pid, port, protocol; the first is
# memcached, every ratio's denominator.
declare -A pid_of port_of protocol_of
if [ "$text" = 1 ]; then
  targets=(memcached-text cafe-text cafe-meta)
  protocol_of=([memcached-text]=text [cafe-text]=text [cafe-meta]=meta)
else
  targets=(memcached cafe-memcache cafe-native)
  protocol_of=([memcached]=memcache [cafe-memcache]=memcache [cafe-native]=native)
fi
memcached_label=${targets[0]}

# bench TARGET PHASE OFFERED ARGS...: one recorded cafe-bench run against
# TARGET (see bench_run in bench-lib.sh)
bench() {
  local label=$1 phase=$2 offered=$3; shift 3
  bench_run "$label" "$phase" "$offered" "${pid_of[$label]}" "$work/$label.log" \
    --server "127.0.0.1:${port_of[$label]}" --protocol "${protocol_of[$label]}" "${load_args[@]}" "$@"
}

# start NAME PORT COMMAND...: a server on the server core, up and answering
start() {
  local name=$1 port=$2; shift 2
  "${server_pin[@]}" "$@" >"$work/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
  wait_port "$last_pid" "$port" "$work/$name.log"
  echo "$name (pid $last_pid, port $port): $*" >&2
}
memcached_for "${protocol_of[$memcached_label]}"
memcached_flags=(-t 1 -m 64 -U 0 "${memcached_extra[@]}")
port=$(free_port)
start "$memcached_label" "$port" memcached "${memcached_flags[@]}" -l 127.0.0.1 -p "$port" "${memcached_user[@]}"
pid_of[$memcached_label]=$last_pid port_of[$memcached_label]=$port
port=$(free_port)
start cafe "$port" "$server_bin" --threads 1 "${cafe_where[@]}" --memory 64m --metrics-listen off --listen "127.0.0.1:$port"
for t in "${targets[@]:1}"; do
  pid_of[$t]=$last_pid port_of[$t]=$port
  ln -s cafe.log "$work/$t.log"  # one server, two protocols
done

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)
for t in "${targets[@]:0:2}"; do  # cafe's two protocols share one key space
  echo "$t: preloading 100000 keys" >&2
  bench "$t" preload "" --preload --duration 0.001 --warmup 0
done
for t in "${targets[@]}"; do
  echo "$t: closed loop, pipeline 8, ${duration}s" >&2
  bench "$t" max8 "" --pipeline 8 --duration "$duration" --warmup "$warmup" --server-pid "${pid_of[$t]}"
done
for t in "${targets[@]}"; do
  echo "$t: closed loop, pipeline 1, ${duration}s" >&2
  bench "$t" max1 "" --pipeline 1 --duration "$duration" --warmup "$warmup" --server-pid "${pid_of[$t]}"
done
for t in "${targets[@]}"; do
  echo "$t: open loop at $cpu_rate requests/s for ${duration}s, for CPU per request" >&2
  bench "$t" cpu "$cpu_rate" --rate "$cpu_rate" --duration "$duration" --warmup 0 || true
done
if [ -z "$max_rate" ]; then
  max_rate=$(python3 -c '
import json, sys
print(max(r["throughput"] for r in map(json.loads, open(sys.argv[1])) if r["phase"] == "max8"))' "$results")
fi
for i in $(seq 1 "$steps"); do
  rate=$(awk -v m="$max_rate" -v i="$i" -v n="$steps" -v p="$sweep_to" 'BEGIN { printf "%.0f", m * p / 100 * i / n }')
  for t in "${targets[@]}"; do
    echo "step $i/$steps, $t: open loop at $rate requests/s, ${step_duration}s" >&2
    bench "$t" sweep "$rate" --rate "$rate" --duration "$step_duration" --warmup "$warmup" || true
  done
done
elapsed=$(( $(date +%s) - began ))
interleaved=$(printf '%s, ' "${targets[@]}")
interleaved=${interleaved%, }

echo
echo "## cafe-server against memcached, one worker thread each"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$command_line\`"
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr); load average at the start: $loadavg"
dirty=$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')
echo "- servers: cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty \`--threads 1 ${cafe_where[*]} --memory 64m\`; $(memcached -V) \`${memcached_flags[*]}\`; both ${server_pin[*]:-unpinned}"
echo "- load: \`cafe-bench ${load_args[*]}\`${load_pin[*]:+ under \`${load_pin[*]}\`}; ${warmup}s warm-up a run; runs interleaved $interleaved; $elapsed s in all"
if [ "$text" = 1 ]; then
  echo "- memcached-text: memcached over its text protocol (\`get\`, \`set\`); cafe-text: cafe over the same; cafe-meta: cafe over memcached's meta protocol (\`mg <key> v f\`, \`ms <key> <len> T0\`)."
else
  echo "- cafe-memcache: cafe over the memcached binary protocol; cafe-native: over its own protocol."
fi
echo "- Ratios are cafe / memcached: above 1 is better for throughput, below 1 for latency. Latency in µs, in open loop from each request's intended send time"
echo
python3 - "$results" "$max_rate" "$cpu_rate" "${targets[@]}" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
top, cpu_rate = float(sys.argv[2]), float(sys.argv[3])
T = sys.argv[4:]  # memcached first: the ratios' denominator

def one(label, phase, offered=None):
    for r in runs:
        if r["label"] == label and r["phase"] == phase and (offered is None or r["offered_rate"] == offered):
            return r
    return None

def num(x):
    return "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"

def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    x = a / b
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"

def row(name, values, ratios=True):
    base = values[0]
    cells = [num(v) for v in values] + [ratio(v, base) if ratios else "" for v in values[1:]]
    print(f"| {name} | {' | '.join(cells)} |")

def get(phase, f, offered=None):
    out = []
    for t in T:
        r = one(t, phase, offered)
        out.append(None if r is None else f(r))
    return out

head = " " + " | ".join(T + [f"{t} / {T[0]}" for t in T[1:]]) + " |"
sep = "|---|" + "---:|" * (2 * len(T) - 1)
lat = lambda p: (lambda r: r["latency_us"][p])
busy = lambda k: (lambda r: 100 * r[k] / r["wall_s"] if r["wall_s"] else None)
# the server's share of a core over the run (warm-up included) per request
per_request = lambda r: 1e6 * r["server_cpu_s"] / r["wall_s"] / r["throughput"] if r["wall_s"] and r["throughput"] else None
# cafe-bench's own measure over the measured window (--server-pid):
# requests per second of server CPU, what one fully busy core would answer
capacity = lambda r: (r.get("server_cpu") or {}).get("requests_per_cpu_s")
print(f"| closed loop |{head}\n{sep}")
for depth in (8, 1):
    ph = f"max{depth}"
    row(f"**max throughput, pipeline {depth}** (req/s)", get(ph, lambda r: r["throughput"]))
    row(f"p50 at pipeline {depth}", get(ph, lat("p50")))
    row(f"p99 at pipeline {depth}", get(ph, lat("p99")))
    row(f"server CPU at pipeline {depth} (% of a core)", get(ph, busy("server_cpu_s")))
    row(f"server CPU per request at pipeline {depth} (µs)", get(ph, per_request))
    row(f"**capacity at pipeline {depth}** (req per server CPU second)", get(ph, capacity))
    row(f"cafe-bench CPU at pipeline {depth} (% of a core)", get(ph, busy("load_cpu_s")))
    row(f"other processes' CPU at pipeline {depth} (% of a core)", get(ph, busy("other_cpu_s")), ratios=False)
print()
print(f"| open loop at {cpu_rate:,.0f} req/s |{head}\n{sep}")
row("**server CPU per request (µs)**", get("cpu", lambda r: 1e6 * r["server_cpu_s"] / r["requests"] if r["requests"] else None))
row("achieved (req/s)", get("cpu", lambda r: r["throughput"]))
row("server CPU (% of a core)", get("cpu", busy("server_cpu_s")))
row("p50", get("cpu", lat("p50")))
row("p99", get("cpu", lat("p99")))
row("p99.9", get("cpu", lat("p999")))
row("cafe-bench send lag p50 (µs)", get("cpu", lambda r: (r.get("send_lag_us") or {}).get("p50")), ratios=False)
print()
rates = sorted({r["offered_rate"] for r in runs if r["phase"] == "sweep"})
short = []
for title, f in [("achieved throughput (req/s)", lambda r: r["throughput"]),
                 ("p50 (µs)", lat("p50")), ("p99 (µs)", lat("p99")), ("p99.9 (µs)", lat("p999")),
                 ("server CPU (% of a core)", busy("server_cpu_s")),
                 ("cafe-bench send lag p50 (µs; the loader's own lateness, part of the latency)",
                  lambda r: (r.get("send_lag_us") or {}).get("p50"))]:
    print(f"| offered (req/s), {title} |{head}\n{sep}")
    for rate in rates:
        vals = get("sweep", f, rate)
        row(f"{rate:,.0f} ({100 * rate / top:.0f}%)", vals)
    print()
for rate in rates:
    for t in T:
        r = one(t, "sweep", rate)
        if r is None:
            print(f"- {t} at {rate:,.0f} req/s: the run failed")
        elif r["throughput"] < 0.95 * rate:
            short.append(f"{t} at {rate:,.0f} ({r['throughput'] / rate:.0%})")
        if r is not None and r["errors"] + r.get("verify_failures", 0):
            print(f"- **{t} at {rate:,.0f} req/s: {r['errors']} errors, {r.get('verify_failures', 0)} verify failures**")
for r in runs:
    if r["phase"] != "sweep" and r["errors"] + r.get("verify_failures", 0):
        print(f"- **{r['label']} {r['phase']}: {r['errors']} errors, {r.get('verify_failures', 0)} verify failures**")
lagging = [f"{r['label']} at {r['offered_rate']:,.0f}" for r in runs if r["phase"] == "sweep"
           and (r.get("send_lag_us") or {}).get("p50", 0) > 0.5 * r["latency_us"]["p50"]]
if lagging:
    print("- cafe-bench's own send lag was over half the p50 latency (the loader, one thread on one core, "
          "bounded these runs; compare the servers there by p99 and above, and by CPU): " + ", ".join(lagging))
unanswered = [f"{r['label']} {r['offered_rate']:,.0f}: {r['unanswered']}" for r in runs if r.get("unanswered", 0) > 1000]
if unanswered:
    print("- requests unanswered at the end of a run (counted in the latency at their age): " + ", ".join(unanswered))
if short:
    print("- below 95% of the offered rate (saturated: the queue, and so latency, grows for the whole run): " + ", ".join(short))
pct = lambda r, k: 100 * r[k] / r["wall_s"] if r["wall_s"] else 0
for t in T:
    r = one(t, "max8")
    if r and pct(r, "server_cpu_s") < 80:
        print(f"- {t} at pipeline 8 was only {pct(r, 'server_cpu_s'):.0f}% busy, so that maximum is not its capacity "
              "(round trips, cafe-bench or other processes bound it); `--sweep-to 200` sweeps further")
    r = max((x for x in runs if x["label"] == t and x["phase"] == "sweep"), key=lambda x: x["offered_rate"], default=None)
    if r and pct(r, "server_cpu_s") < 80:
        print(f"- {t} was only {pct(r, 'server_cpu_s'):.0f}% busy at the highest rate: the sweep stopped short of its capacity")
bound = [f"{r['label']} {r['phase']} ({r['loader_cpu']['busiest_thread_percent']:.0f}%)" for r in runs
         if (r.get("loader_cpu") or {}).get("loader_bound")]
if bound:
    print("- cafe-bench's busiest load thread used 90% of a core or more in: " + ", ".join(bound)
          + "; the loader, not the server, may have set that throughput (the capacity row still holds)")
missed = [f"{r['label']} {r['phase']} {r['offered_rate'] or ''}".strip() for r in runs if r.get("misses")]
if missed:
    print(f"- GET misses after the preload (evictions?) in: {', '.join(missed)}")
busy = [r for r in runs if pct(r, "other_cpu_s") > 10]
if busy:
    worst = max(busy, key=lambda r: pct(r, "other_cpu_s"))
    print(f"- **other processes used more than 10% of a core in {len(busy)} of {len(runs)} runs (up to "
          f"{pct(worst, 'other_cpu_s'):.0f}%, {worst['label']} {worst['phase']}): the machine was not quiet, "
          "trust these figures less**")
steal = sum(r.get("steal_s", 0) for r in runs) / max(sum(r["wall_s"] for r in runs), 1e-9)
if steal > 0.01:
    print(f"- the hypervisor stole {100 * steal:.1f}% of a core on average")
EOF

if [ "$plot" = 1 ]; then
  python3 scripts/plot_latency.py "$results" --out "$out" \
    --title "one worker thread each, $connections connections, open loop" >&2 &&
    echo "chart: $out (results: $results)"
fi
