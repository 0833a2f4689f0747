#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with a throwaway, unlocked gnome-keyring as
# its Secret Service, so keychain code is tested against the real thing without touching
# the user's own keychain. Usage: scripts/keychain.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${1:-}" != "--inside" ]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  mkdir -m 700 "$scratch/run"
  # HOME and XDG_RUNTIME_DIR point into the scratch dir; cargo and rustup keep theirs.
  CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
    HOME="$scratch" XDG_RUNTIME_DIR="$scratch/run" \
    dbus-run-session -- "$0" --inside "$@" 2> >(grep -v "Failed to set fd limit" >&2)
  exit
fi
shift
# A keyring password is needed for gnome-keyring to create the default (login) collection.
printf 'parley-test-keyring' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
exec "$@"
