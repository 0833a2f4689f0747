#!/usr/bin/env bash
# Builds the installable desktop app with tauri-cli: a .deb on Linux (here), an .msi on
# Windows, a .dmg/.app on macOS (run this script on those systems; see the README). Checks
# the .deb's desktop entry (opens parley:// links).
#   scripts/package.sh            → target/release/bundle/deb/Parley_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
scripts/deps.sh
if ! cargo tauri --version >/dev/null 2>&1; then
  echo "== installing tauri-cli (once)"
  cargo install tauri-cli --locked --version '^2'
fi
scripts/ui.sh
case "$(uname -s)" in
  Linux) bundles=deb ;;
  Darwin) bundles=app,dmg ;;
  *) bundles=msi ;;
esac
cd src-tauri
# The front end is built by ui.sh above; tauri.conf.json's beforeBuildCommand builds it again
# for people who run `cargo tauri build` by hand.
cargo tauri build --bundles "$bundles" --ci
ls -l "$CARGO_TARGET_DIR"/release/bundle/*/
if [ "$bundles" = deb ]; then
  # The desktop entry must hand a clicked parley:// link to the app (%u) and claim the scheme.
  deb=$(ls -t "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb | head -1)
  entry=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO usr/share/applications/Parley.desktop)
  echo "$entry"
  grep -qx 'Exec=parley-desktop %u' <<<"$entry"
  grep -q '^MimeType=.*x-scheme-handler/parley' <<<"$entry"
fi
