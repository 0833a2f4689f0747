#!/usr/bin/env bash
# Rendering figures for the desktop app (issue 5): four parley-cli participants send 640×360 at
# 30 fps; the release app draws their tiles under Xvfb. Prints per-tile frames per second drawn
# and the memory of the app and its WebKit processes, for RUNS runs (default 3).
#   scripts/bench-render.sh [RUNS]
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-3}"
scripts/ui.sh
cargo build --release --locked -p parley-engine --bin parley-cli
for i in $(seq "$runs"); do
  scripts/keychain.sh env PARLEY_BENCH_RENDER=1 \
    cargo test --release --locked -p parley-desktop --test e2e -- --nocapture render_four 2>&1 \
    | grep -E "^RENDER|^tile|MiB|^frames arriving|panicked"
done
