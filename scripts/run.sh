#!/usr/bin/env bash
# Builds and runs Parley: the server on its embedded SQLite default (data in the user's data
# dir, e.g. ~/.local/share/parley) listening on http://127.0.0.1:8080.
# Installs what it needs first (scripts/deps.sh). Extra arguments go to parley-server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
cargo build --release --locked -p parley-server
echo "== Parley server on http://${PARLEY_LISTEN:-127.0.0.1:8080}  (Ctrl-C stops it)"
echo "   The desktop app is not built yet (see README: Status)."
exec "$CARGO_TARGET_DIR/release/parley-server" "$@"
