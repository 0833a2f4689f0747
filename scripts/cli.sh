#!/usr/bin/env bash
# Builds (when needed) and runs parley-cli, Parley's headless client: scripts/cli.sh ARGS...
# (`scripts/cli.sh --help` lists the commands). Talks to $PARLEY_SERVER, by default the
# server scripts/run.sh starts on http://127.0.0.1:8080.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" -p parley-engine --bin parley-cli >&2
exec "$CARGO_TARGET_DIR/release/parley-cli" "$@"
