#!/usr/bin/env bash
# Runs a command with PARLEY_TEST_SCHEMATHESIS set to a schemathesis `st` (the property-based
# API fuzzer of server/tests/api/api_fuzz.rs). The virtualenv is made once, outside the clone
# (~/.cache/parley-st-venv), from the pinned server/tests/api/schemathesis/requirements.txt
# (wheels from PyPI; nothing is downloaded at test time).
# Usage: scripts/schemathesis.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PARLEY_ST_VENV:-$HOME/.cache/parley-st-venv}"
req=server/tests/api/schemathesis/requirements.txt
if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
  echo "== making $venv (schemathesis for the API fuzzer)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
PARLEY_TEST_SCHEMATHESIS="$venv/bin/st" exec "$@"
