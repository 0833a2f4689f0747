#!/usr/bin/env bash
# Runs a command with PARLEY_TEST_PYTHON set to a Python that has aiortc (the independent
# WebRTC peer of engine/tests/interop.rs). The virtualenv is made once, outside the clone
# (~/.cache/parley-venv), from the pinned engine/tests/interop/requirements.txt (wheels from
# PyPI, nothing downloaded at test time). Usage: scripts/interop.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PARLEY_VENV:-$HOME/.cache/parley-venv}"
req=engine/tests/interop/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  echo "== making $venv (aiortc for the interop test)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
PARLEY_TEST_PYTHON="$venv/bin/python" exec "$@"
