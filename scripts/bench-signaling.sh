#!/usr/bin/env bash
# Signaling load (issue 6): N WebSocket clients (default 2,000) in meetings of 4 against
# Parley's server, then the same against a Socket.IO 4 server, in one run on this machine.
# Prints a table per run (Parley, Socket.IO, ratio) and writes bench/results/signaling-K.json.
#   scripts/bench-signaling.sh [RUNS] [CLIENTS] [extra parley-bench options…]
#   scripts/bench-signaling.sh 1 40 --rates 1,2 --phase-secs 1    # the CI smoke
source "$(dirname "$0")/bench-prelude.sh"   # Node.js and npm among the system packages
runs="${1:-5}"
clients="${2:-2000}"
shift $(( $# > 2 ? 2 : $# ))
(cd bench/socketio && npm ci --no-audit --no-fund --silent)
bench_build -p parley-server -p parley-bench
bench_runs "$runs" signaling --clients "$clients" "$@"
# Server CPU per delivered chat message at each rate both servers ran (issue 18's figure):
# medians over the runs, and the median of the per-run ratios.
python3 - "$runs" <<'PY'
import json, statistics, sys
runs = [json.load(open(f"bench/results/signaling-{i}.json")) for i in range(1, int(sys.argv[1]) + 1)]
def per_rate(report):
    return {p["rate_per_client"]: p for p in report["phases"]}
rates = sorted(set.intersection(*(set(per_rate(r["parley"])) & set(per_rate(r["socketio"])) for r in runs)))
print("| rate per client | Parley µs CPU / delivered | Socket.IO 4 | Parley / Socket.IO (median of per-run ratios) |")
print("|---|---|---|---|")
for rate in rates:
    p = [per_rate(r["parley"])[rate]["cpu_us_per_delivered"] for r in runs]
    s = [per_rate(r["socketio"])[rate]["cpu_us_per_delivered"] for r in runs]
    ratio = statistics.median(a / b for a, b in zip(p, s))
    fmt = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})"
    print(f"| {rate:g}/s | {fmt(p)} | {fmt(s)} | {ratio:.2f} |")
PY
