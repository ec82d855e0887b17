#!/usr/bin/env bash
# The price of routing, measured with cafe-bench: cafe-server configurations
# side by side, closed loop, runs interleaved round by round, throughput and
# the ratio of each configuration to the first, and each one's capacity
# (requests per second of server CPU over the measured window, cafe-bench
# --server-pid) with its ratio to the first. By default `--threads 1
# --cores 0` against `--threads 2 --cores 0`: two workers on one core, so
# half the keys hop to the other worker over the channel and nothing is
# gained from a second core; the ratio is what the hop costs. With more
# cores, --config lines measure scaling instead (see the example below).
#
# The load, as scripts/bench-latency.sh: 16 connections, 100,000 16-byte
# keys preloaded, 64-byte values, 90% GET, uniform keys, memcached binary
# protocol, pipeline 8, cafe-bench on --load-cores.
#
# usage: scripts/bench-routing.sh [options]
#   --out JSONL          the results, one JSON object per run (default
#                        bench-routing.jsonl)
#   --config "FLAGS"     a cafe-server configuration (repeatable; the first
#                        is the baseline). Default: "--threads 1 --cores 0"
#                        and "--threads 2 --cores 0". The word `--direct`
#                        in FLAGS runs that configuration with
#                        --port-per-worker and cafe-bench --servers over the
#                        N per-worker ports (keys placed by the client, no
#                        hop), e.g. --config "--threads 2 --cores 0 --direct"
#   --rounds N           interleaved rounds (default 3)
#   --pipeline D         requests in flight per connection (default 8)
#   --connections C      connections in all (default 16)
#   --duration S         seconds measured per run (default 5)
#   --warmup S           seconds before measuring (default 1)
#   --load-cores LIST    cores for cafe-bench's threads (default 1)
#   --load-threads N     cafe-bench threads (default 1)
#   --bench "ARGS"       more cafe-bench flags for every run
# Example, scaling on a 16-core machine:
#   scripts/bench-routing.sh --load-cores 8-15 --load-threads 8 --connections 64 \
#     --config "--threads 1 --cores 0" --config "--threads 2 --cores 0-1" \
#     --config "--threads 4 --cores 0-3" --config "--threads 8 --cores 0-7"
# Environment: CAFE_BENCH / CAFE_SERVER name prebuilt binaries (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench-routing.sh${*:+ $*}"
out=bench-routing.jsonl configs=() rounds=3 pipeline=8 connections=16 duration=5 warmup=1
load_cores=1 load_threads=1 bench_extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a path}; shift 2 ;;
    --config) configs+=("${2:?--config needs cafe-server flags}"); shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --pipeline) pipeline=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --load-cores) load_cores=${2:?}; shift 2 ;;
    --load-threads) load_threads=${2:?}; shift 2 ;;
    --bench) bench_extra=${2?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "--rounds takes a positive whole number" >&2; exit 2 ;; esac
[ ${#configs[@]} -gt 0 ] || configs=("--threads 1 --cores 0" "--threads 2 --cores 0")
for c in "${configs[@]}"; do
  case " $c " in *" --listen"*) echo "the script picks the address; drop --listen" >&2; exit 2 ;; esac
done

# need, need_build, binaries, pin_load, free_port, wait_port, cpu_ticks, start_work, bench_run
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh  # the scripts run from the repository root
need_build
need python3 "apt-get install python3"
need timeout "apt-get install coreutils"
[ "$missing" = 0 ] || exit 1
pin_load "$load_cores" "$load_threads"
binaries
# shellcheck disable=SC2206  # --bench is a list of flags, split on spaces
load_args=(--connections "$connections" --keys 100000 --key-size 16 --value-size 64
  --get-ratio 0.9 --distribution uniform --seed 1 "${load_where[@]}" $bench_extra)
step_duration=$duration
start_work "$out"

# Every configuration runs for the whole script, so rounds interleave.
# free_ports N: the first of N consecutive free loopback ports
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
for _ in range(100):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); base = s.getsockname()[1]; s.close()
    try:
        held = [socket.socket() for _ in range(n)]
        for i, h in enumerate(held):
            h.bind(("127.0.0.1", base + i))
        print(base); break
    except OSError:
        pass
    finally:
        for h in held:
            h.close()
PY
}

server_pids=() targets=()
for i in "${!configs[@]}"; do
  port=$(free_port)
  # shellcheck disable=SC2206  # a configuration is a list of flags
  flags=(${configs[$i]})
  target=(--server "127.0.0.1:$port")
  if [[ " ${configs[$i]} " == *" --direct "* ]]; then
    workers=$(sed -n 's/.*--threads \([0-9]*\).*/\1/p' <<<"${configs[$i]}")
    [ -n "$workers" ] || { echo "--direct needs --threads N in the same --config" >&2; exit 2; }
    first=$(free_ports "$workers")
    flags=("${flags[@]/--direct/}" --port-per-worker "$first")
    target=(--servers "$(seq -s, -f "127.0.0.1:%.0f" "$first" $((first + workers - 1)))")
  fi
  # shellcheck disable=SC2068  # an emptied --direct word must vanish
  "$server_bin" ${flags[@]} --metrics-listen off --listen "127.0.0.1:$port" >"$work/server$i.log" 2>&1 &
  pids+=("$!") server_pids+=("$!") targets+=("${target[*]}")
  wait_port "$!" "$port" "$work/server$i.log"
  echo "cafe-server $i (pid ${server_pids[$i]}, port $port): ${configs[$i]} -> ${target[*]}" >&2
  # shellcheck disable=SC2206  # the target is two words
  target=(${targets[$i]})
  bench_run "config$i" preload "" "${server_pids[$i]}" "$work/server$i.log" \
    "${target[@]}" "${load_args[@]}" --preload --duration 0.001 --warmup 0
done

loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s)
for r in $(seq 1 "$rounds"); do
  for i in "${!configs[@]}"; do
    echo "round $r/$rounds, configuration $i: pipeline $pipeline, ${duration}s" >&2
    # shellcheck disable=SC2206  # the target is two words
    target=(${targets[$i]})
    bench_run "config$i" "round$r" "" "${server_pids[$i]}" "$work/server$i.log" \
      "${target[@]}" "${load_args[@]}" \
      --pipeline "$pipeline" --duration "$duration" --warmup "$warmup" \
      --server-pid "${server_pids[$i]}" || true
  done
done
elapsed=$(( $(date +%s) - began ))

echo
echo "## cafe-server configurations side by side"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- command: \`$command_line\`"
echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr); load average at the start: $loadavg"
dirty=$(git diff --quiet HEAD -- src 2>/dev/null || echo ' + uncommitted changes')
echo "- server: cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?')$dirty"
echo "- load: \`cafe-bench ${load_args[*]} --pipeline $pipeline\`${load_pin[*]:+ under \`${load_pin[*]}\`}; keys preloaded; ${duration}s a run after ${warmup}s warm-up, rounds interleaved; $elapsed s in all"
echo
python3 - "$results" "$rounds" "${configs[@]}" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rounds, configs = int(sys.argv[2]), sys.argv[3:]
tput = {(r["label"], r["phase"]): r for r in runs}
print("| configuration | " + " | ".join(f"round {k}" for k in range(1, rounds + 1))
      + " | median (req/s) | ratio to the first | server CPU (% of a core)"
      + " | capacity (req per server CPU second) | capacity ratio to the first |")
print("|---|" + "---:|" * (rounds + 5))
base = cap_base = None
# cafe-bench's own measure over the measured window (--server-pid)
capacity = lambda r: (r.get("server_cpu") or {}).get("requests_per_cpu_s") if r else None
for i, c in enumerate(configs):
    rs = [tput.get((f"config{i}", f"round{k}")) for k in range(1, rounds + 1)]
    got = [r["throughput"] for r in rs if r]
    med = statistics.median(got) if got else None
    if i == 0:
        base = med  # every ratio is to the first configuration; none if it failed
    ratio = f"{med / base:.2f}" if med and base else "-"
    cpu = [100 * r["server_cpu_s"] / r["wall_s"] for r in rs if r and r["wall_s"]]
    caps = [x for x in map(capacity, rs) if x]
    cap = statistics.median(caps) if caps else None
    if i == 0:
        cap_base = cap
    cap_cells = (f"{cap:,.0f} | " + (f"{cap / cap_base:.2f}" if cap_base else "-")) if cap else "- | -"
    cells = " | ".join(f"{r['throughput']:,.0f}" if r else "failed" for r in rs)
    print(f"| `{c}` | {cells} | {med:,.0f} | {ratio} | {statistics.median(cpu):.0f} | {cap_cells} |" if med
          else f"| `{c}` | {cells} | - | - | - | - | - |")
bad = [r for r in runs if r["errors"] + r.get("verify_failures", 0)]
for r in bad:
    print(f"- **{r['label']} {r['phase']}: {r['errors']} errors**")
bound = [f"{r['label']} {r['phase']}" for r in runs if (r.get("loader_cpu") or {}).get("loader_bound")]
if bound:
    print("- cafe-bench's busiest load thread used 90% of a core or more in: " + ", ".join(bound)
          + "; the loader, not the server, may have set that throughput (compare by capacity there)")
noisy = [r for r in runs if r["wall_s"] and r["other_cpu_s"] / r["wall_s"] > 0.1]
if noisy:
    print(f"- **other processes used more than 10% of a core in {len(noisy)} of {len(runs)} runs: "
          "the machine was not quiet, trust these figures less**")
EOF
