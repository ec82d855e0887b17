# Shell helpers shared by scripts/bench-latency.sh and bench-compare.sh:
# ports, readiness, and CPU accounting from /proc. Sourced, not run.

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
# machine_ticks: busy (user, nice, system, irq, softirq) and steal ticks of
# all cores together, from /proc/stat; what the server and cafe-bench did
# not use of it is other processes' (the machine is shared: say so)
machine_ticks() {
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat
}

# children_cpu FILE: user + system seconds in FILE, the output of the
# `times` builtin (which must run in this shell, not in a $(...) subshell,
# to see the children this shell waited for, cafe-bench among them)
children_cpu() {
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); sub("s", "", t[2]); s += t[1] * 60 + t[2] }; print s }' "$1"
}
