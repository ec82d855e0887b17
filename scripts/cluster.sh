#!/usr/bin/env bash
# A fleet of cafe-server nodes behind twemproxy (nutcracker), on this
# machine's loopback only: node i on 127.0.0.(i+2), all on the same port,
# and nutcracker on 127.0.0.1 in front of them with libmemcached's ketama
# placement (distribution: ketama, hash: md5), auto-ejection of a failing
# node and its retry. The library's cluster client (cafe::client::Cluster)
# and cafe-bench --servers place keys exactly as the proxy does, so they
# can be pointed at the nodes directly. See docs/SCALE-OUT.md.
#
# usage: scripts/cluster.sh start  [options]   start N nodes and the proxy
#        scripts/cluster.sh stop   [-d DIR]    stop everything it started
#        scripts/cluster.sh status [-d DIR]    pids, addresses, curr_items
#        scripts/cluster.sh stop-node I  [-d DIR]   stop node I (0-based)
#        scripts/cluster.sh start-node I [-d DIR]   start node I again, empty
# options (start):
#   -n N             nodes (default 3, at most 200)
#   -p PORT          the nodes' port (default 7070)
#   -P PORT          the proxy's port on 127.0.0.1 (default 22122)
#   -S PORT          the proxy's stats port on 127.0.0.1 (default 22222)
#   -a "ARGS"        cafe-server flags for each node (default
#                    "--threads 1 --no-pin"); --listen and
#                    --metrics-listen are set here: each node serves
#                    /metrics on its own address, port 9150
#   --engine memcached   memcached nodes instead, for comparison (flags
#                    default "-t 1 -m 64 -U 0"; -l and -p are set here)
#   -c CORES         run the nodes and the proxy under `taskset -c CORES`
#   --timeout MS                 twemproxy's timeout (default 400)
#   --server-failure-limit K     failures that eject a node (default 2)
#   --server-retry-timeout MS    how long it stays out (default 2000)
#   -d DIR           state directory: pids, nutcracker.yml, logs, the
#                    settings (default target/cluster)
# Environment: CAFE_SERVER names a prebuilt cafe-server (else it is built
# in release mode); NUTCRACKER names nutcracker (else found on PATH or in
# /usr/sbin).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "cluster.sh: $*" >&2; exit 2; }

cmd=${1:-}
[ -n "$cmd" ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
shift
node_arg=""
case "$cmd" in stop-node|start-node) node_arg=${1:?"$cmd needs a node index"}; shift ;; esac

nodes=3 port=7070 proxy_port=22122 stats_port=22222 node_args="" engine=cafe cores=""
timeout_ms=400 failure_limit=2 retry_ms=2000 dir=target/cluster
while [ $# -gt 0 ]; do
  case "$1" in
    -n) nodes=${2:?-n needs a count}; shift 2 ;;
    -p) port=${2:?-p needs a port}; shift 2 ;;
    -P) proxy_port=${2:?-P needs a port}; shift 2 ;;
    -S) stats_port=${2:?-S needs a port}; shift 2 ;;
    -a) node_args=${2?-a needs flags}; shift 2 ;;
    --engine) engine=${2:?--engine needs cafe or memcached}; shift 2 ;;
    -c) cores=${2:?-c needs a core list}; shift 2 ;;
    --timeout) timeout_ms=${2:?}; shift 2 ;;
    --server-failure-limit) failure_limit=${2:?}; shift 2 ;;
    --server-retry-timeout) retry_ms=${2:?}; shift 2 ;;
    -d) dir=${2:?-d needs a directory}; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
for n in "$nodes" "$port" "$proxy_port" "$stats_port" "$timeout_ms" "$failure_limit" "$retry_ms"; do
  [[ $n =~ ^[0-9]+$ ]] || die "$n is not a number"
done
[ "$nodes" -ge 1 ] && [ "$nodes" -le 200 ] || die "-n must be between 1 and 200"
case "$engine" in
  cafe) node_args=${node_args:-"--threads 1 --no-pin"} ;;
  memcached) node_args=${node_args:-"-t 1 -m 64 -U 0"} ;;
  *) die "--engine is cafe or memcached" ;;
esac
case " $node_args " in
  *" --listen"*|*" --metrics-listen"*|*" -l"*|*" -p"*) die "-a must not set the listen address or port: cluster.sh sets them" ;;
esac

node_host() { echo "127.0.0.$(( $1 + 2 ))"; }

# Only ever loopback: every address this script binds or lists is checked.
loopback() {
  case "$1" in 127.*) ;; *) die "refusing non-loopback address $1" ;; esac
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }

# wait_listen HOST PORT PID LOG: until HOST:PORT accepts (10 s at most)
wait_listen() {
  local i
  for i in $(seq 1 200); do
    alive "$3" || break
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1:$2; its log:" >&2
  tail -n 20 "$4" >&2 || true
  return 1
}

# stat HOST PORT NAME: one counter of a memcached-protocol `stats`, or "-"
stat() {
  local v
  v=$({ exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null && {
    printf 'stats\r\nquit\r\n' >&3
    timeout 2 cat <&3 | tr -d '\r' | awk -v n="$3" '$1 == "STAT" && $2 == n { print $3 }'
  }) || true
  echo "${v:--}"
}

load_settings() {
  [ -f "$dir/settings" ] || die "no fleet in $dir (start one first)"
  # shellcheck disable=SC1091
  . "$dir/settings"
}

server_binary() {
  if [ "$engine" = memcached ]; then
    server_bin=$(command -v memcached) || die "memcached not found: apt-get install memcached"
    return
  fi
  if [ -n "${CAFE_SERVER:-}" ]; then
    server_bin=$CAFE_SERVER
  else
    command -v cargo >/dev/null || die "cargo not found: install Rust, or set CAFE_SERVER"
    cargo build --release --quiet --bin cafe-server
    server_bin=${CARGO_TARGET_DIR:-target}/release/cafe-server
  fi
  server_bin=$(readlink -f "$server_bin")
}

start_node() {  # start_node I
  local i=$1 host pid
  host=$(node_host "$i")
  loopback "$host"
  if alive "$(pid_of "node$i")"; then die "node $i is already running"; fi
  local where=("--listen" "$host:$port" "--metrics-listen" "$host:9150")
  if [ "$engine" = memcached ]; then
    where=(-l "$host" -p "$port")
    [ "$(id -u)" != 0 ] || where+=(-u root)  # memcached refuses root without it
  fi
  # shellcheck disable=SC2086
  "${pin[@]}" "$server_bin" "${where[@]}" $node_args >"$dir/node$i.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/node$i.pid"
  wait_listen "$host" "$port" "$pid" "$dir/node$i.log" || die "node $i did not start"
}

stop_pid() {  # stop_pid NAME: SIGTERM the process in NAME.pid, wait up to 5 s
  local pid i
  pid=$(pid_of "$1")
  if alive "$pid"; then
    kill "$pid"
    for i in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$dir/$1.pid"
}

# pin: the taskset prefix (set after the settings are known)
set_pin() {
  pin=()
  if [ -n "$cores" ]; then
    command -v taskset >/dev/null || die "-c needs taskset (util-linux)"
    pin=(taskset -c "$cores")
  fi
}

case "$cmd" in
  start)
    set_pin
    [ ! -f "$dir/settings" ] || ! alive "$(pid_of proxy)" || die "a fleet is already running from $dir (stop it first)"
    nutcracker=${NUTCRACKER:-$(command -v nutcracker || echo /usr/sbin/nutcracker)}
    [ -x "$nutcracker" ] || die "nutcracker not found: apt-get install nutcracker (or set NUTCRACKER)"
    loopback 127.0.0.1
    mkdir -p "$dir"
    server_binary
    printf 'nodes=%q port=%q proxy_port=%q stats_port=%q engine=%q cores=%q node_args=%q\n' \
      "$nodes" "$port" "$proxy_port" "$stats_port" "$engine" "$cores" "$node_args" >"$dir/settings"
    servers=""
    for i in $(seq 0 $(( nodes - 1 ))); do
      start_node "$i"
      servers+="    - $(node_host "$i"):$port:1"$'\n'
    done
    cat >"$dir/nutcracker.yml" <<EOF
cafe:
  listen: 127.0.0.1:$proxy_port
  hash: md5
  distribution: ketama
  timeout: $timeout_ms
  auto_eject_hosts: true
  server_retry_timeout: $retry_ms
  server_failure_limit: $failure_limit
  preconnect: true
  servers:
$servers
EOF
    "$nutcracker" -t -c "$dir/nutcracker.yml" >"$dir/nutcracker-check.log" 2>&1 \
      || { cat "$dir/nutcracker-check.log" >&2; die "nutcracker rejects $dir/nutcracker.yml"; }
    "${pin[@]}" "$nutcracker" -c "$dir/nutcracker.yml" -a 127.0.0.1 -s "$stats_port" \
      -o "$dir/nutcracker.log" -p "$dir/nutcracker.pidfile" >"$dir/nutcracker.out" 2>&1 &
    echo $! >"$dir/proxy.pid"
    wait_listen 127.0.0.1 "$proxy_port" "$(pid_of proxy)" "$dir/nutcracker.log" \
      || die "nutcracker did not start"
    echo "fleet of $nodes $engine: nodes $(node_host 0)..$(node_host $(( nodes - 1 ))):$port, proxy 127.0.0.1:$proxy_port (state in $dir)"
    printf 'cafe-bench --servers %s\n' "$(for i in $(seq 0 $(( nodes - 1 ))); do printf '%s:%s,' "$(node_host "$i")" "$port"; done | sed 's/,$//')"
    ;;
  stop)
    load_settings
    stop_pid proxy
    for i in $(seq 0 $(( nodes - 1 ))); do stop_pid "node$i"; done
    rm -f "$dir/settings" "$dir/nutcracker.pidfile"
    echo "stopped the fleet in $dir"
    ;;
  stop-node|start-node)
    load_settings
    set_pin
    [[ $node_arg =~ ^[0-9]+$ ]] && [ "$node_arg" -lt "$nodes" ] || die "no node $node_arg (0..$(( nodes - 1 )))"
    if [ "$cmd" = stop-node ]; then
      stop_pid "node$node_arg"
      echo "stopped node $node_arg ($(node_host "$node_arg"):$port)"
    else
      server_binary
      start_node "$node_arg"
      echo "started $engine node $node_arg ($(node_host "$node_arg"):$port), empty"
    fi
    ;;
  status)
    load_settings
    printf '%-8s %-8s %-22s %-5s %s\n' what pid address up curr_items
    for i in $(seq 0 $(( nodes - 1 ))); do
      pid=$(pid_of "node$i") host=$(node_host "$i") up=no
      alive "$pid" && up=yes
      printf '%-8s %-8s %-22s %-5s %s\n' "node$i" "${pid:--}" "$host:$port" "$up" "$(stat "$host" "$port" curr_items)"
    done
    pid=$(pid_of proxy) up=no
    alive "$pid" && up=yes
    # twemproxy does not proxy `stats`: its own counters are JSON on the
    # stats port.
    printf '%-8s %-8s %-22s %-5s %s\n' proxy "${pid:--}" "127.0.0.1:$proxy_port" "$up" "(stats: 127.0.0.1:$stats_port)"
    ;;
  *) die "unknown command $cmd (start, stop, status, stop-node, start-node)" ;;
esac
