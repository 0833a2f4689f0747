#!/usr/bin/env bash
# Runs a command with real browsers ready for the tests: Debian's Chromium, its chromedriver
# and Firefox ESR (installed once), puppeteer-core (for Firefox's WebDriver BiDi) from the
# locked test-support/browser/package-lock.json (it downloads no browser), all inside a throwaway network namespace (scripts/netns.sh:
# browsers gather ICE candidates on real interfaces only, and no media may leave the test).
#   scripts/browsers.sh cargo test -p parley-engine --test browser
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --debs chromium chromium-driver firefox-esr >&2
dir=test-support/browser
stamp=$dir/node_modules/.parley-lock
if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
  (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
fi
exec scripts/netns.sh env PARLEY_TEST_BROWSERS=1 "$@"
