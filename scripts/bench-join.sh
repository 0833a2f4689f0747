#!/usr/bin/env bash
# Join time (issue 6): from the join command to the first decoded remote video frame, two
# participants on loopback, split into REST, WebSocket welcome, ICE connected, DTLS, first frame.
# Prints p50/p95 per run and writes bench/results/join-K.json.
#   scripts/bench-join.sh [RUNS=5] [JOINS=20] [extra parley-bench join options…]
#   scripts/bench-join.sh 1 2      # the CI smoke
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-5}"
joins="${2:-20}"
shift $(( $# > 2 ? 2 : $# ))
bench_build -p parley-server -p parley-bench >&2
bench_runs "$runs" join --joins "$joins" "$@"
