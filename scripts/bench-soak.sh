#!/usr/bin/env bash
# Soak (issue 18): CLIENTS (default 2,000) in meetings of 4 for SECS (default 600) against
# Parley's server (release build, embedded SQLite): joins, chat, camera toggles, leaves,
# dropped connections resumed within the grace period, closes and fresh rejoins. Samples the
# server's RSS, open descriptors and threads every 10 s; fails on any error or when the
# figures at the end pass their value after the 2-minute warm-up by more than 5 %.
# Writes bench/results/soak-K.json.
#   scripts/bench-soak.sh [RUNS=1] [CLIENTS=2000] [SECS=600] [extra parley-bench options…]
#   scripts/bench-soak.sh 1 40 20 --warmup-secs 5 --sample-secs 2 --stay-secs 3,8 --tolerance 1   # CI smoke
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-1}"
clients="${2:-2000}"
secs="${3:-600}"
shift $(( $# > 3 ? 3 : $# ))
bench_build -p parley-server -p parley-bench
bench_runs "$runs" soak --clients "$clients" --secs "$secs" "$@"
