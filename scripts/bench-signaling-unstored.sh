#!/usr/bin/env bash
# What storing chat costs (issue 18): bench-signaling against a server built with the
# `bench-unstored-chat` feature, whose chat writer numbers and acknowledges every message
# without storing it (everything else, the hand-off to the writer thread and its linger
# included, is as shipped), beside Socket.IO 4 in the same runs. Subtract its figure from
# scripts/bench-signaling.sh's to get storage's share of Parley's CPU per delivered message.
#   scripts/bench-signaling-unstored.sh [RUNS=3] [CLIENTS=2000] [extra parley-bench options…]
#   scripts/bench-signaling-unstored.sh 3 2000 --rates 1,2 --phase-secs 20
# The unstored binary is built first and copied aside; bench-signaling.sh then rebuilds the
# shipped one in the shared target directory, so nothing else ever runs the unstored build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
scripts/deps.sh >&2
runs="${1:-3}"
clients="${2:-2000}"
shift $(( $# > 2 ? 2 : $# ))
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Built with parley-bench as bench-signaling.sh builds the shipped server, so both binaries
# get the same features of their shared dependencies.
cargo build --release --locked -p parley-server -p parley-bench --features parley-server/bench-unstored-chat
cp "$CARGO_TARGET_DIR/release/parley-server" "$work/parley-server-unstored"
scripts/bench-signaling.sh "$runs" "$clients" --server-bin "$work/parley-server-unstored" "$@"
