#!/usr/bin/env bash
# Where the server's CPU goes per request, memcached against cafe-server,
# under the same cafe-bench load: system calls by kind, context switches
# (from perf's tracepoints, which count without slowing the server as
# strace does), and user and system CPU time (from /proc/PID/stat). Both
# servers get one worker on --server-core; the load runs on --load-core.
#
# The load, as scripts/bench-compare.sh: 16 connections, 100,000 16-byte
# keys preloaded, 64-byte values, 90% GET, uniform keys, memcached binary
# protocol (cafe is also measured over its native protocol).
#
# usage: scripts/syscalls-compare.sh [options]
#   --rate R             open loop at R requests/s (default 40000)
#   --pipeline D         closed loop at depth D instead of --rate
#   --duration S         seconds measured per server (default 4)
#   --server-core N      the servers' core (default 0)
#   --load-core N        cafe-bench's core (default 1)
# Needs perf with tracepoint access (root, or kernel.perf_event_paranoid
# at most 1). Environment: CAFE_BENCH / CAFE_SERVER name prebuilt binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/syscalls-compare.sh${*:+ $*}"
rate=40000 pipeline="" duration=4 server_core=0 load_core=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=${2:?}; shift 2 ;;
    --pipeline) pipeline=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --server-core) server_core=${2:?}; shift 2 ;;
    --load-core) load_core=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# need, need_build, binaries, free_port, wait_port, cpu_ticks, tick, start_work
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh  # the scripts run from the repository root
need_build
need python3 "apt-get install python3"
need memcached "apt-get install memcached"
need perf "apt-get install linux-perf"
need taskset "apt-get install util-linux"
[ "$missing" = 0 ] || exit 1
events=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl,sched:sched_switch
if ! perf stat -e "$events" -- true >/dev/null 2>&1; then
  echo "perf cannot count syscall tracepoints here: run as root, or set kernel.perf_event_paranoid to 1 or less" >&2
  exit 1
fi
binaries
memcached_user=()
[ "$(id -u)" = 0 ] && memcached_user=(-u root)  # memcached refuses root without -u
load=(--connections 16 --keys 100000 --key-size 16 --value-size 64 --get-ratio 0.9
  --distribution uniform --seed 1 --threads 1 --cores "$load_core")
if [ -n "$pipeline" ]; then mode=(--pipeline "$pipeline"); else mode=(--rate "$rate"); fi
start_work  # the results stay in the scratch directory: the table is the output

# measure LABEL PROTOCOL PID PORT: the load on PORT while perf counts PID
measure() {
  local label=$1 protocol=$2 pid=$3 port=$4 u0 s0 u1 s1
  read -r u0 s0 < <(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
  # perf counts from before the load starts until it has ended: an idle
  # server makes no calls, so the extra time adds nothing to the counts
  perf stat -x, -e "$events" -p "$pid" -o "$work/$label.perf" &
  local perf_pid=$!
  taskset -c "$load_core" "$bench_bin" --server "127.0.0.1:$port" --protocol "$protocol" \
    "${load[@]}" "${mode[@]}" --duration "$duration" --warmup 0 --json >"$work/$label.json" &
  bench_pid=$!
  wait "$bench_pid"
  bench_pid=""
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  read -r u1 s1 < <(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
  python3 - "$work/$label.json" "$work/$label.perf" "$label" "$((u1 - u0))" "$((s1 - s0))" "$tick" >>"$results" <<'EOF'
import json, sys
run, perf, label, user, system, tick = sys.argv[1:]
r = json.load(open(run))
counts = {}
for line in open(perf):
    f = line.strip().split(",")
    if len(f) > 2 and f[0].replace(".", "").isdigit():
        counts[f[2].split(":")[-1].replace("sys_enter_", "")] = float(f[0])
print(json.dumps(dict(label=label, requests=r["requests"], throughput=r["throughput"],
                      user_s=int(user) / int(tick), system_s=int(system) / int(tick), counts=counts)))
EOF
}

port=$(free_port)
taskset -c "$server_core" memcached -t 1 -m 1024 -U 0 -l 127.0.0.1 -p "$port" -B binary "${memcached_user[@]}" \
  >"$work/memcached.log" 2>&1 &
pids+=("$!"); mc_pid=$!; mc_port=$port
wait_port "$mc_pid" "$mc_port" "$work/memcached.log"
port=$(free_port)
"$server_bin" --threads 1 --cores "$server_core" --metrics-listen off --listen "127.0.0.1:$port" >"$work/cafe.log" 2>&1 &
pids+=("$!"); cafe_pid=$!; cafe_port=$port
wait_port "$cafe_pid" "$cafe_port" "$work/cafe.log"
for target in "$mc_port" "$cafe_port"; do
  "$bench_bin" --server "127.0.0.1:$target" "${load[@]}" --preload --duration 0.001 --warmup 0 >/dev/null
done
measure memcached memcache "$mc_pid" "$mc_port"
measure cafe-memcache memcache "$cafe_pid" "$cafe_port"
measure cafe-native native "$cafe_pid" "$cafe_port"

echo
echo "## Per request: system calls, context switches and CPU"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); command: \`$command_line\`"
echo "- $(memcached -V) \`-t 1\` and cafe $(git rev-parse --short HEAD 2>/dev/null || echo '?') \`--threads 1\`, both on core $server_core; \`cafe-bench ${load[*]} ${mode[*]}\` on core $load_core, ${duration}s each"
echo
python3 - "$results" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = [("system calls", lambda c: c.get("raw_syscalls:sys_enter", c.get("sys_enter"))),
        ("read / recvfrom", lambda c: c.get("read", 0) + c.get("recvfrom", 0)),
        ("write / sendto / sendmsg", lambda c: c.get("write", 0) + c.get("sendto", 0) + c.get("sendmsg", 0)),
        ("epoll_wait", lambda c: c.get("epoll_wait")),
        ("epoll_ctl", lambda c: c.get("epoll_ctl")),
        ("context switches", lambda c: c.get("sched_switch"))]
print("| per request | " + " | ".join(r["label"] for r in runs) + " |")
print("|---|" + "---:|" * len(runs))
print("| requests measured | " + " | ".join(f"{r['requests']:,}" for r in runs) + " |")
for name, f in rows:
    vals = [f(r["counts"]) for r in runs]
    print(f"| {name} | " + " | ".join("-" if v is None else f"{v / r['requests']:.3f}" for v, r in zip(vals, runs)) + " |")
for name, key in [("user CPU (µs)", "user_s"), ("system CPU (µs)", "system_s")]:
    print(f"| {name} | " + " | ".join(f"{1e6 * r[key] / r['requests']:.2f}" for r in runs) + " |")
print("| total CPU (µs) | " + " | ".join(f"{1e6 * (r['user_s'] + r['system_s']) / r['requests']:.2f}" for r in runs) + " |")
EOF
