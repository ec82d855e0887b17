#!/usr/bin/env bash
# A soak: one cafe-server (4 workers, --memory 64m, default flags
# otherwise) under hostile and well-behaved clients at once, for --duration
# seconds (600 by default), on loopback only.
#
# - Well-behaved: cafe-bench runs back to back, 30 s each, cycling through
#   the text, meta, memcached binary and native protocols, two threads,
#   keys spread over every worker, every GET hit verified against the
#   value its key must hold (--verify).
# - Hostile, at the same time: every attack of scripts/attack.py in turn
#   (slow headers, half-sent 1 MiB sets, pipelined gets never read, SETQ
#   and APPENDQ floods, random large sets), 10 s each, each checking that
#   its probe's connections are answered and its kept items read back
#   intact.
#
# Reports the verified requests, verification failures and errors, the
# attacks' stuck connections and corrupt items, and the server's peak and
# final RSS. Exits non-zero on any verification failure, corrupt item,
# stuck connection, or a server that died.
#
# usage: scripts/soak.sh [--duration S]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=600
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
need_build
need python3 "apt-get install python3"
[ "$missing" = 0 ] || exit 1
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
binaries
start_work

port=$(free_port)
"$server_bin" --threads 4 --no-pin --memory 64m --metrics-listen off \
  --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
pids+=("$server")
wait_port "$server" "$port" "$work/server.log"
end=$(( $(date +%s) + duration ))

# The well-behaved side, in the background: verified loads back to back.
(
  protocols=(text meta memcache native) i=0
  while [ "$(date +%s)" -lt "$end" ]; do
    p=${protocols[$((i % 4))]}
    left=$(( end - $(date +%s) )); [ "$left" -gt 30 ] && left=30
    [ "$left" -ge 2 ] || break
    "$bench_bin" --server "127.0.0.1:$port" --protocol "$p" --threads 2 --no-pin \
      --connections 8 --pipeline 4 --keys 20000 --value-size 10-2000 --preload --verify \
      --duration "$left" --warmup 0.2 --seed "$((i + 1))" --json >"$work/good-$i.json" 2>"$work/good-$i.err" ||
      echo "{\"protocol\":\"$p\",\"failed\":1}" >"$work/good-$i.json"
    i=$((i + 1))
  done
) &
good=$!
pids+=("$good")

# The hostile side, in the foreground.
attacks=(slowloris halfset getnoread setq appendq randomsets)
j=0
while [ "$(date +%s)" -lt "$(( end - 15 ))" ]; do
  a=${attacks[$((j % ${#attacks[@]}))]}
  python3 scripts/attack.py "$port" "$server" "$a" --duration 10 --settle 1 \
    >"$work/bad-$j.txt" 2>"$work/bad-$j.err" ||
    echo "failed $a: $(tail -n 1 "$work/bad-$j.err")" >>"$work/bad-$j.txt"
  kill -0 "$server" 2>/dev/null || { echo "cafe-server died during $a:" >&2; cat "$work/server.log" >&2; exit 1; }
  j=$((j + 1))
done
wait "$good" || true
kill -0 "$server" 2>/dev/null || { echo "cafe-server died:" >&2; cat "$work/server.log" >&2; exit 1; }
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
final=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")

python3 - "$work" "$duration" "$peak" "$final" <<'EOF'
import glob, json, os, sys
work, duration, peak, final = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
good = []
for path in sorted(glob.glob(os.path.join(work, "good-*.json"))):
    text = open(path).read().strip()
    line = [l for l in text.splitlines() if l.startswith("{")]
    good.append(json.loads(line[-1]) if line else {"failed": 1})
bad = []
for path in sorted(glob.glob(os.path.join(work, "bad-*.txt"))):
    fields = dict(l.split(None, 1) for l in open(path) if l.strip())
    bad.append(fields)
requests = sum(g.get("requests", 0) for g in good)
verify = sum(g.get("verify_failures", 0) for g in good)
errors = sum(g.get("errors", 0) for g in good)
failed_runs = sum(1 for g in good if g.get("failed"))
stuck = sum(int(b.get("stuck", "0")) for b in bad)
corrupt = sum(int(b.get("kept_corrupt", "0")) for b in bad)
failed_attacks = [b["failed"].strip() for b in bad if "failed" in b]
print(f"## Soak: {duration} s, cafe-server --threads 4 --memory 64m\n")
print("| | |\n|---|---:|")
print(f"| verified runs (text, meta, binary, native) | {len(good)} |")
print(f"| verified requests | {requests:,} |")
print(f"| verification failures | {verify} |")
print(f"| errors answered to well-behaved clients | {errors} |")
print(f"| well-behaved runs that failed | {failed_runs} |")
print(f"| attacks run | {len(bad)} |")
print(f"| stuck connections after attacks | {stuck} |")
print(f"| kept items corrupt | {corrupt} |")
print(f"| attack runs that failed | {len(failed_attacks)} |")
print(f"| server peak / final RSS | {peak / 1024:.0f} / {final / 1024:.0f} MiB |")
for why in failed_attacks:
    print(f"- attack failed: {why}")
ok = verify == 0 and corrupt == 0 and stuck == 0 and failed_runs == 0
print(f"\n{'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
EOF
