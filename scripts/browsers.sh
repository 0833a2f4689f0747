#!/usr/bin/env bash
# Runs a command with real browsers ready for the tests: Debian's Chromium, its chromedriver
# and Firefox ESR (installed once), puppeteer-core (for Firefox's WebDriver BiDi) from the
# locked test-support/browser/package-lock.json (it downloads no browser), all inside a throwaway network namespace (scripts/netns.sh:
# browsers gather ICE candidates on real interfaces only, and no media may leave the test).
#   scripts/browsers.sh cargo test -p parley-engine --test browser
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v firefox-esr >/dev/null || missing+=(firefox-esr)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
dir=test-support/browser
stamp=$dir/node_modules/.parley-lock
if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
  (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
fi
exec scripts/netns.sh env PARLEY_TEST_BROWSERS=1 "$@"
