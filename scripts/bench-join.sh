#!/usr/bin/env bash
# Join time (issue 6): from the join command to the first decoded remote video frame, two
# participants on loopback, split into REST, WebSocket welcome, ICE connected, DTLS, first frame.
# Prints p50/p95 per run and writes bench/results/join-K.json.
#   scripts/bench-join.sh [RUNS=5] [JOINS=20] [extra parley-bench join options…]
#   scripts/bench-join.sh 1 2      # the CI smoke
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
runs="${1:-5}"
joins="${2:-20}"
shift $(( $# > 2 ? 2 : $# ))
scripts/deps.sh >&2
cargo build --release --locked -p parley-server -p parley-bench >&2
mkdir -p bench/results
for i in $(seq "$runs"); do
  echo "== run $i of $runs"
  "$CARGO_TARGET_DIR/release/parley-bench" join --joins "$joins" \
    --json "bench/results/join-$i.json" "$@"
done
