#!/usr/bin/env bash
# Builds and runs Parley: the server on its embedded SQLite default (data in the user's data
# dir, e.g. ~/.local/share/parley) on http://127.0.0.1:8080, and the desktop app pointed at
# it. Quitting the app (tray → Quit) stops the server too. Installs what it needs first
# (scripts/deps.sh). PARLEY_SERVER_ONLY=1 runs only the server (extra arguments go to it).
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
# libvpx inside the executable, as in the installers (and the same build scripts/package.sh
# makes, so packaging after running rebuilds nothing).
# shellcheck source=scripts/static-vpx.sh
source scripts/static-vpx.sh
static_vpx Linux >/dev/null
scripts/ui.sh  # the desktop app's front end and the browser client the server embeds

# The release build, said before it starts: how long it took here last time, or how long a
# first one takes; and when another build holds the folder, whose it is and what to do.
build() {
  local what="$*" seconds
  seconds="$CARGO_TARGET_DIR/release/.parley-build-seconds-${what//[^a-z]/}"
  if [ -s "$seconds" ]; then
    echo "== building Parley (release); the last build here took $(( $(cat "$seconds") / 60 + 1 )) min"
  else
    echo "== building Parley (release) for the first time on this machine: about 20 minutes"
    echo "   on 2 cores (README, \"First run\"), a minute or two on later runs. Progress below."
  fi
  local lock="$CARGO_TARGET_DIR/release/.cargo-lock"
  if [ -e "$lock" ] && ! flock -n "$lock" true 2>/dev/null; then
    local who
    who=$(fuser "$lock" 2>/dev/null | xargs -r ps -o pid=,args= -p 2>/dev/null | head -3 || true)
    echo "== waiting: another build is using $CARGO_TARGET_DIR (cargo allows one at a time):"
    echo "${who:-   (a process of another user, or one this shell cannot see)}" | sed 's/^/   /'
    echo "   Let it finish, stop it, or run with CARGO_TARGET_DIR=another/folder to build apart."
  fi
  local t0=$SECONDS
  cargo build --release --locked "$@"
  mkdir -p "$CARGO_TARGET_DIR/release"
  echo $((SECONDS - t0)) >"$seconds"
}

if [ -n "${PARLEY_SERVER_ONLY:-}" ]; then
  build -p parley-server
  echo "== Parley server on http://${PARLEY_LISTEN:-127.0.0.1:8080}  (Ctrl-C stops it)"
  exec "$CARGO_TARGET_DIR/release/parley-server" "$@"
fi
build -p parley-server -p parley-desktop
"$CARGO_TARGET_DIR/release/parley-server" "$@" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
listen="${PARLEY_LISTEN:-127.0.0.1:8080}"
for _ in $(seq 100); do
  curl -fsS "http://$listen/api/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "the server did not start" >&2; exit 1; }
  sleep 0.1
done
echo "== Parley server on http://$listen; starting the desktop app ($((SECONDS - started)) s since run.sh started)"
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "no display: the server keeps running (Ctrl-C stops it)" >&2
  wait "$server"
fi
PARLEY_SERVER="${PARLEY_APP_SERVER:-http://$listen}" "$CARGO_TARGET_DIR/release/parley-desktop"
