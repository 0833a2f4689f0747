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
cargo build --release --locked -p parley-server -p parley-bench
bench_runs "$runs" signaling --clients "$clients" "$@"
