#!/usr/bin/env bash
# Where each signaling server's CPU goes (issue 18): runs `parley-bench signaling` at 1 chat
# message per second per client and samples each server with `perf` for SECS seconds once its
# clients are steady. Prints, per server, CPU per delivered message in all and the part of it
# spent in the kernel sending frames (tcp_sendmsg, whichever call made it, including loopback's
# delivery to the client), reading them, waiting for events, and (Parley) committing chat
# (fsync and the WAL's writes). Sending is the same kernel work for any server that writes one
# WebSocket frame per delivered message; it bounds how far below Socket.IO a server can go.
#   scripts/bench-signaling-floor.sh [RUNS=3] [CLIENTS=2000] [SECS=15] [SETTLE=20]
#   scripts/bench-signaling-floor.sh 1 200 5 8     # the CI smoke
# SETTLE: seconds from a server's start to its sampling (its clients' join storm takes under
# 10 s at 2,000 here; the phase begins 4 s after the storm).
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-3}"
clients="${2:-2000}"
secs="${3:-15}"
settle="${4:-20}"
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
(cd bench/socketio && npm ci --no-audit --no-fund --silent)
bench_build -p parley-server -p parley-bench
work="$(mktemp -d)"
bench=""
# On any exit: end the benchmark this script started, and its server.
cleanup() {
  if [ -n "$bench" ]; then
    pkill -P "$bench" 2>/dev/null || true
    kill "$bench" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
hz=999
delivered=$(( clients / 4 * 4 * 3 ))   # rate 1: each message reaches the 3 others

# share FILE SYMBOL…: percent of FILE's samples under any of SYMBOLs (children included).
share() {
  local file="$1"
  shift
  perf report -i "$file" --children -q -g none --sort sym 2>/dev/null |
    awk -v syms=" $* " '{ s = $NF; if (index(syms, " " s " ")) t += $1 } END { printf "%.1f", t + 0 }'
}

# sample PID NAME: records PID for $secs s into $work/NAME.data, prints its CPU in cores.
sample() {
  perf record -F "$hz" -g -p "$1" -o "$work/$2.data" -- sleep "$secs" >/dev/null 2>&1
  local n
  n=$(perf script -i "$work/$2.data" -F period 2>/dev/null | wc -l)
  python3 -c "print(f'{$n / $hz / $secs:.3f}')"
}

# alive: fails (with the benchmark's log) once the benchmark has ended, so no wait hangs.
alive() {
  kill -0 "$bench" 2>/dev/null && return 0
  echo "the benchmark ended early:" >&2
  cat "$log" >&2
  exit 1
}

# report KEY LABEL CORES: a table row from $work/KEY.data.
report() {
  local file="$work/$1.data" name="$2" cores="$3"
  local send recv wait commit
  send=$(share "$file" tcp_sendmsg)
  recv=$(share "$file" tcp_recvmsg)
  wait=$(share "$file" __x64_sys_epoll_wait __x64_sys_epoll_pwait __x64_sys_futex)
  commit=$(share "$file" __x64_sys_fsync __x64_sys_fdatasync __x64_sys_pwrite64)
  python3 - "$name" "$cores" "$send" "$recv" "$wait" "$commit" "$delivered" <<'PY'
import sys
name, cores, send, recv, wait, commit, delivered = sys.argv[1], *map(float, sys.argv[2:])
if cores <= 0 or send <= 0:
    sys.exit(f"{name}: perf saw no CPU or no sends ({cores} cores, {send} % sending): not sampled in its phase")
us = lambda share: cores * share / 100 * 1e6 / delivered
print(f"| {name} | {cores:.3f} | {us(100):.1f} | {us(send):.1f} ({send:.0f} %) | {us(recv):.1f} | {us(wait):.1f} | {us(commit):.1f} |")
PY
}

echo "| server | cores | µs CPU / delivered | of it: sending frames | reading | waiting (epoll, futex) | committing (fsync, WAL writes) |"
echo "|---|---|---|---|---|---|---|"
# Each phase lasts settle + secs + 5 s: a server is sampled from `settle` seconds after it
# starts until `secs` later, inside its phase.
for i in $(seq "$runs"); do
  log="$work/bench-$i.log"
  "$bin/parley-bench" signaling --clients "$clients" --rates 1 \
    --phase-secs $(( settle + secs + 5 )) >"$log" 2>&1 &
  bench=$!
  until server=$(pgrep -n -P "$bench" -f parley-server); do alive; sleep 1; done
  sleep "$settle"
  report parley "Parley (run $i)" "$(sample "$server" parley)"
  until grep -q "Socket.IO" "$log"; do alive; sleep 1; done
  until node=$(pgrep -n -P "$bench" -f "node server.js"); do alive; sleep 1; done
  sleep "$settle"
  report socketio "Socket.IO 4 (run $i)" "$(sample "$node" socketio)"
  wait "$bench" || true
  grep "msg/s per client" "$log" >&2
done
