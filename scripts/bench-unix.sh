#!/usr/bin/env bash
# Round trip over a UNIX domain socket against loopback TCP, for cafe and
# memcached side by side: one client, one request in flight, a `get` of a
# 64-byte value, --requests round trips per run, rounds interleaved; p50
# and p99 of each, and the UNIX/TCP ratio per server. The client is a
# small Python loop, the same for all four paths, so its own cost is in
# every figure alike; the differences are the servers' and the kernel's.
# memcached serves TCP or a UNIX socket, not both, so two run.
#
# usage: scripts/bench-unix.sh [--rounds N] [--requests N]
# Environment: CAFE_SERVER names a prebuilt cafe-server (no build).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 requests=20000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?}; shift 2 ;;
    --requests) requests=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
need python3 "apt-get install python3"
need memcached "apt-get install memcached"
[ -n "${CAFE_SERVER:-}" ] || need cargo "install Rust from https://rustup.rs"
[ "$missing" = 0 ] || exit 1
if [ -z "${CAFE_SERVER:-}" ]; then cargo build --release --quiet --bin cafe-server; fi
server_bin=${CAFE_SERVER:-${CARGO_TARGET_DIR:-target}/release/cafe-server}
start_work
memcached_for text

cafe_port=$(free_port) mc_port=$(free_port)
"$server_bin" --threads 1 --cores 0 --metrics-listen off --listen "127.0.0.1:$cafe_port" \
  --unix-socket "$work/cafe.sock" >"$work/cafe.log" 2>&1 &
pids+=("$!"); wait_port "$!" "$cafe_port" "$work/cafe.log"
taskset -c 0 memcached "${memcached_user[@]}" -t 1 -U 0 -l 127.0.0.1 -p "$mc_port" >"$work/mc.log" 2>&1 &
pids+=("$!"); wait_port "$!" "$mc_port" "$work/mc.log"
taskset -c 0 memcached "${memcached_user[@]}" -t 1 -U 0 -s "$work/mc.sock" -a 0700 >"$work/mcu.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do [ -S "$work/mc.sock" ] && break; sleep 0.05; done

taskset -c 1 python3 - "$rounds" "$requests" "127.0.0.1:$cafe_port" "$work/cafe.sock" \
  "127.0.0.1:$mc_port" "$work/mc.sock" <<'EOF'
import socket, statistics, sys, time
rounds, n = int(sys.argv[1]), int(sys.argv[2])
paths = {"cafe tcp": sys.argv[3], "cafe unix": sys.argv[4],
         "memcached tcp": sys.argv[5], "memcached unix": sys.argv[6]}
def connect(where):
    if where.startswith("/"):
        s = socket.socket(socket.AF_UNIX); s.connect(where)
    else:
        host, port = where.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
value = b"v" * 64
want = b"VALUE k 0 64\r\n" + value + b"\r\nEND\r\n"
times = {k: [] for k in paths}
for _ in range(rounds):
    for name, where in paths.items():
        s = connect(where)
        s.sendall(b"set k 0 0 64\r\n" + value + b"\r\n")
        assert s.recv(64) == b"STORED\r\n"
        for i in range(n):
            t = time.perf_counter_ns()
            s.sendall(b"get k\r\n")
            got = s.recv(256)
            while len(got) < len(want):
                got += s.recv(256)
            times[name].append(time.perf_counter_ns() - t)
            assert got == want, got
        s.close()
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(q * len(v)))] / 1000
print(f"\n## UNIX socket against loopback TCP: `get` round trip, {rounds} rounds of {n}\n")
print("| path | p50 (µs) | p99 (µs) |")
print("|---|---:|---:|")
for name, v in times.items():
    print(f"| {name} | {pct(v, .5):.1f} | {pct(v, .99):.1f} |")
for server in ("cafe", "memcached"):
    u, t = times[f"{server} unix"], times[f"{server} tcp"]
    print(f"- {server}: UNIX/TCP p50 {pct(u, .5) / pct(t, .5):.2f}, p99 {pct(u, .99) / pct(t, .99):.2f}")
EOF
