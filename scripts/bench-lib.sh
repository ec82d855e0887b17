# Shell helpers shared by scripts/bench-latency.sh, bench-compare.sh,
# bench-routing.sh and syscalls-compare.sh:
# prerequisites, ports, readiness, memcached's flags per protocol, CPU
# accounting from /proc, clean-up and one recorded cafe-bench run.
# Sourced, not run.

# `times` and awk must agree on the decimal point whatever the locale.
export LC_ALL=C

missing=0
need() {  # need TOOL HOW-TO-INSTALL: notes a missing tool in $missing
  command -v "$1" >/dev/null || { echo "missing $1: $2" >&2; missing=1; }
}
need_build() {  # cargo, unless CAFE_SERVER and CAFE_BENCH name prebuilt binaries
  if [ -z "${CAFE_BENCH:-}" ] || [ -z "${CAFE_SERVER:-}" ]; then
    need cargo "install Rust from https://rustup.rs"
  fi
}

# binaries: $server_bin and $bench_bin, built in release mode unless
# CAFE_SERVER and CAFE_BENCH name prebuilt ones
binaries() {
  if [ -z "${CAFE_BENCH:-}" ] || [ -z "${CAFE_SERVER:-}" ]; then
    cargo build --release --quiet --bin cafe-server --bin cafe-bench
  fi
  local target=${CARGO_TARGET_DIR:-target}/release
  server_bin=${CAFE_SERVER:-$target/cafe-server}
  bench_bin=${CAFE_BENCH:-$target/cafe-bench}
}

# pin_load CORES THREADS: $load_pin, a taskset prefix for cafe-bench, and
# $load_where, its placement flags; unpinned without taskset or 2 cores
pin_load() {
  load_pin=()
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    load_pin=(taskset -c "$1")
    load_where=(--threads "$2" --cores "$1")
  else
    echo "note: no taskset or fewer than 2 cores; cafe-bench runs unpinned, beside the server" >&2
    load_where=(--threads "$2" --no-pin)
  fi
}

# memcached_for PROTOCOL: $memcached_extra, the flags memcached needs to
# be measured over cafe-bench's --protocol PROTOCOL: `-B binary` for
# memcache (binary only, as every binary comparison has run it), none for
# text and meta (its default, -B auto, speaks both); and $memcached_user,
# `-u root` as root, which memcached otherwise refuses
memcached_for() {
  case "$1" in
    memcache) memcached_extra=(-B binary) ;;
    text|meta) memcached_extra=() ;;
    *) echo "memcached does not speak cafe-bench's --protocol $1" >&2; exit 2 ;;
  esac
  memcached_user=()
  [ "$(id -u)" != 0 ] || memcached_user=(-u root)
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PID PORT LOG: until PORT accepts (10 s at most) while PID lives
wait_port() {
  local i
  for i in $(seq 1 200); do
    kill -0 "$1" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server did not start on port $2:" >&2; cat "$3" >&2; exit 1
}

cpu_ticks() {  # cpu_ticks PID: utime + stime of the whole process, in ticks
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
tick=$(getconf CLK_TCK)
# process_ticks: "PID TICKS" (utime + stime) for every process now. The
# CPU of other processes over a run is what the processes present at both
# ends spent between them: per-process counters are exact, while /proc/stat's
# per-CPU busy time is credited late on a tickless kernel (an idle core's
# time can land in the next run's window, which once read as 55% "other
# processes" on a quiet machine).
process_ticks() {
  python3 -c '
import glob
for f in glob.glob("/proc/[0-9]*/stat"):
    try:
        s = open(f).read()
    except OSError:
        continue  # exited meanwhile
    rest = s[s.rindex(")") + 2:].split()
    print(s.split(" ", 1)[0], int(rest[11]) + int(rest[12]))'
}
# steal_ticks: ticks the hypervisor took from all cores together
steal_ticks() {
  awk '$1 == "cpu" { print $9 }' /proc/stat
}

# children_cpu FILE: user + system seconds in FILE, the output of the
# `times` builtin (which must run in this shell, not in a $(...) subshell,
# to see the children this shell waited for, cafe-bench among them)
children_cpu() {
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); sub("s", "", t[2]); s += t[1] * 60 + t[2] }; print s }' "$1"
}

# start_work [RESULTS]: a scratch directory ($work) and the results file
# (default: in the scratch directory), emptied; on exit, every process in $pids (and a running cafe-bench) is
# killed and waited for, and the scratch directory removed
start_work() {
  work=$(mktemp -d)
  pids=() bench_pid=""
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  results=${1:-$work/results.jsonl}
  mkdir -p "$(dirname "$results")"
  : >"$results"
}
cleanup() {
  if [ -n "$bench_pid" ]; then kill "$bench_pid" 2>/dev/null || true; wait "$bench_pid" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}

# bench_run LABEL PHASE OFFERED SERVER_PID SERVER_LOG CAFE-BENCH-ARGS...:
# one cafe-bench run (under $load_pin, with $bench_bin) against the server
# SERVER_PID; unless PHASE is preload, its JSON with the label, phase,
# offered rate, wall time and the CPU seconds the server, cafe-bench and
# every other process spent is appended to $results. Fails if the run did;
# exits if the server died. Uses $duration, $step_duration and $warmup
# for its time limit.
bench_run() {
  local label=$1 phase=$2 offered=$3 server_pid=$4 server_log=$5; shift 5
  local tag="$label-$phase-${offered:-closed}-$RANDOM"
  local s0 s1 c0 c1 t0 t1 m0 m1 rc=0 limit
  limit=$(awk -v d="$duration" -v s="$step_duration" -v w="$warmup" 'BEGIN { print int((d > s ? d : s) + w + 120) }')
  process_ticks >"$work/procs0"; m0=$(steal_ticks)
  s0=$(cpu_ticks "$server_pid"); t0=$(date +%s.%N); times >"$work/times0"
  "${load_pin[@]}" timeout "$limit" "$bench_bin" "$@" --json >"$work/$tag.json" 2>"$work/$tag.err" &
  bench_pid=$!
  wait "$bench_pid" || rc=$?
  bench_pid=""
  times >"$work/times1"; t1=$(date +%s.%N)
  c0=$(children_cpu "$work/times0"); c1=$(children_cpu "$work/times1")
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "$label's server died:" >&2; cat "$server_log" >&2; exit 1
  fi
  s1=$(cpu_ticks "$server_pid"); m1=$(steal_ticks); process_ticks >"$work/procs1"
  if [ "$rc" != 0 ]; then
    echo "cafe-bench failed ($rc) against $label ($phase): $*" >&2; cat "$work/$tag.err" >&2; return 1
  fi
  [ "$phase" != preload ] || return 0
  python3 - "$work/$tag.json" "$results" "$label" "$phase" "$offered" \
    "$(awk -v a="$s0" -v b="$s1" -v t="$tick" 'BEGIN { print (b - a) / t }')" \
    "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    "$(awk -v a="$m0" -v b="$m1" -v t="$tick" 'BEGIN { print (b - a) / t }')" \
    "$work/procs0" "$work/procs1" "$server_pid" "$tick" <<'EOF'
import json, sys
(src, dst, label, phase, offered, server_cpu, load_cpu, wall, steal,
 procs0, procs1, server_pid, tick) = sys.argv[1:]
before = dict(l.split() for l in open(procs0))
after = dict(l.split() for l in open(procs1))
others = sum(int(t) - int(before[p]) for p, t in after.items() if p in before and p != server_pid)
text = open(src).read()
try:
    r = json.loads(text)
except ValueError:  # tolerate anything printed before the JSON line
    r = json.loads([l for l in text.splitlines() if l.startswith("{")][-1])
r.update(label=label, phase=phase, offered_rate=float(offered) if offered else None,
         server_cpu_s=float(server_cpu), load_cpu_s=float(load_cpu), wall_s=float(wall))
r.update(other_cpu_s=max(0, others) / int(tick), steal_s=float(steal))
with open(dst, "a") as f:
    f.write(json.dumps(r) + "\n")
EOF
}
