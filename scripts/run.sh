#!/usr/bin/env bash
# Builds and runs Parley: the server on its embedded SQLite default (data in the user's data
# dir, e.g. ~/.local/share/parley) on http://127.0.0.1:8080, and the desktop app pointed at
# it. Quitting the app (tray → Quit) stops the server too. Installs what it needs first
# (scripts/deps.sh). PARLEY_SERVER_ONLY=1 runs only the server (extra arguments go to it).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
scripts/ui.sh  # the desktop app's front end and the browser client the server embeds
if [ -n "${PARLEY_SERVER_ONLY:-}" ]; then
  cargo build --release --locked -p parley-server
  echo "== Parley server on http://${PARLEY_LISTEN:-127.0.0.1:8080}  (Ctrl-C stops it)"
  exec "$CARGO_TARGET_DIR/release/parley-server" "$@"
fi
cargo build --release --locked -p parley-server -p parley-desktop
"$CARGO_TARGET_DIR/release/parley-server" "$@" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
listen="${PARLEY_LISTEN:-127.0.0.1:8080}"
for _ in $(seq 100); do
  curl -fsS "http://$listen/api/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "the server did not start" >&2; exit 1; }
  sleep 0.1
done
echo "== Parley server on http://$listen; starting the desktop app"
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "no display: the server keeps running (Ctrl-C stops it)" >&2
  wait "$server"
fi
PARLEY_SERVER="${PARLEY_APP_SERVER:-http://$listen}" "$CARGO_TARGET_DIR/release/parley-desktop"
