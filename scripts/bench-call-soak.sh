#!/usr/bin/env bash
# The engine's soak (issue 18): four engine participants in one call for SECS (default
# 1,800), synthetic camera and tone, decoding all they receive; a camera off and on every
# 20 s, a screen share (Xvfb) every 2 minutes, a network outage every 5 minutes (6 s and 14 s
# in turn) through a TURN relay. Samples the engine process's RSS, threads and descriptors
# every 10 s; fails on any error (a call ended, a share refused, a receiver without video
# outside an outage and its 30 s recovery) or when the figures at the end pass their value
# after the warm-up (6 minutes: one outage) by more than 5 %. Writes bench/results/call-soak-K.json.
#   scripts/bench-call-soak.sh [RUNS=1] [SECS=1800] [extra parley-bench options…]
#   scripts/bench-call-soak.sh 1 75 --warmup-secs 20 --outage-every-secs 30 --outage-secs 5 \
#     --toggle-every-secs 10 --share-every-secs 40 --share-secs 15 --tolerance 1   # CI smoke
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-1}"
secs="${2:-1800}"
shift $(( $# > 2 ? 2 : $# ))
bench_build -p parley-server -p parley-bench
bench_runs "$runs" call-soak --secs "$secs" "$@"
