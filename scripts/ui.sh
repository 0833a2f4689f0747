#!/usr/bin/env bash
# Builds the desktop app's front end (ui/ → ui/dist, which the Tauri build embeds) and the
# browser client (ui/web.html → ui/dist-web, which parley-server embeds): installs
# the locked npm packages when they changed, type-checks (svelte-check, strict TypeScript),
# runs the unit tests (Vitest) and bundles with Vite. Used by run.sh and test.sh before cargo builds parley-desktop.
set -euo pipefail
cd "$(dirname "$0")/../ui"
stamp=node_modules/.parley-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
npm run --silent check
npm test --silent
npm run --silent build -- --logLevel warn
npm run --silent build:web -- --logLevel warn
