#!/usr/bin/env bash
# Builds the installable desktop app with tauri-cli: a .deb on Linux (here), an .msi on
# Windows, a .dmg/.app on macOS (run this script on those systems; see the README). Checks
# the .deb's desktop entry (opens parley:// links).
#   scripts/package.sh            → target/release/bundle/deb/Parley_<version>_<arch>.deb
#   scripts/package.sh --debug    the same from the debug build (the test run: it packages
#                                 the very binary the tests built, instead of a release build)
#   scripts/package.sh --check    only checks the prerequisites and says what is missing
# On Debian and Ubuntu the prerequisites are installed (scripts/deps.sh); elsewhere they are
# checked, and each missing one is named with how to get it.
# PARLEY_PACKAGE_OS (Linux, Darwin, Windows) overrides the detected system (tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"

os="${PARLEY_PACKAGE_OS:-$(uname -s)}"
case "$os" in
  Linux) os=Linux ;;
  Darwin) os=macOS ;;
  MINGW* | MSYS* | CYGWIN* | Windows*) os=Windows ;;
  *) echo "unsupported system: $os" >&2; exit 1 ;;
esac

missing=()
need() { # COMMAND HOW-TO-GET-IT
  command -v "$1" >/dev/null 2>&1 || missing+=("$1: $2")
}
# libvpx: found by pkg-config, or given as VPX_LIB_DIR + VPX_INCLUDE_DIR + VPX_VERSION. Its
# bindings are generated from the installed headers at build time (env-libvpx-sys's
# `generate`, through libclang), so any version works.
need_vpx() {
  if [ -n "${VPX_LIB_DIR:-}" ] && [ -n "${VPX_VERSION:-}" ]; then return; fi
  if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists vpx; then return; fi
  missing+=("libvpx: $1")
}
# libvpx linked statically (scripts/static-vpx.sh).
# shellcheck source=scripts/static-vpx.sh
source scripts/static-vpx.sh
check_prerequisites() {
  need cargo "Rust from https://rustup.rs"
  need npm "Node.js 20 or later from https://nodejs.org"
  need cmake "CMake (builds the bundled Opus)"
  case "$os" in
    macOS)
      need clang "Xcode's command line tools: xcode-select --install"
      need pkg-config "brew install pkg-config"
      need otool "Xcode's command line tools: xcode-select --install"
      need_vpx "brew install libvpx (pkg-config finds it)"
      # WebRTC's audio processing is built from the crate's bundled copy with autotools.
      need glibtoolize "brew install libtool"
      need automake "brew install automake"
      need autoconf "brew install autoconf"
      ;;
    Windows)
      need cl "Visual Studio Build Tools with the C++ workload (run from a Developer shell)"
      [ -n "${LIBCLANG_PATH:-}" ] || command -v clang >/dev/null 2>&1 ||
        missing+=("libclang: LLVM from https://llvm.org, then set LIBCLANG_PATH to its bin folder")
      need_vpx "vcpkg install libvpx:x64-windows, then set VPX_LIB_DIR, VPX_INCLUDE_DIR and VPX_VERSION (see the README)"
      ;;
    Linux)
      need pkg-config "your distribution's pkg-config"
      need_vpx "your distribution's libvpx development package"
      ;;
  esac
}

if [ "$os" = Linux ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
  [ "${1:-}" = --check ] || scripts/deps.sh
fi
check_prerequisites
if ((${#missing[@]})); then
  echo "missing to package Parley on $os:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "prerequisites for packaging on $os: all there"
[ "${1:-}" = --check ] && exit 0

static_vpx "$os"
# scripts/ui.sh's `npm ci` also installs tauri-cli: the npm package @tauri-apps/cli, pinned in
# ui/package.json, carries the CLI built for each platform (`cargo install tauri-cli` compiled
# it for many minutes on every new machine).
scripts/ui.sh
tauri="$PWD/ui/node_modules/.bin/tauri"
case "$os" in
  Linux) bundles=deb ;;
  macOS) bundles=app,dmg ;;
  Windows) bundles=msi ;;
esac
cd src-tauri
# The front end is built by ui.sh above; tauri.conf.json's beforeBuildCommand builds it again
# for people who run `npx tauri build` (or `cargo tauri build`) by hand.
sign=()
if [ "$os" = Windows ] && [ -n "${PARLEY_WINDOWS_CERT_THUMBPRINT:-}" ]; then
  # signtool, through Tauri, with the certificate of that thumbprint from the user's store
  # (README, "Signing"); RFC 3161 timestamps so the signature outlives the certificate.
  sign=(--config "{\"bundle\":{\"windows\":{\"certificateThumbprint\":\"$PARLEY_WINDOWS_CERT_THUMBPRINT\",\"digestAlgorithm\":\"sha256\",\"timestampUrl\":\"${PARLEY_WINDOWS_TIMESTAMP_URL:-http://timestamp.digicert.com}\",\"tsp\":true}}}")
fi
# (${sign[@]+…}: macOS's bash 3.2 calls an empty array unbound under set -u.)
if [ "${1:-}" = --debug ]; then
  # The workspace's own debug build (the features every test build has), then only bundling.
  profile=debug
  (cd .. && cargo build --workspace --locked --bin parley-desktop)
  "$tauri" bundle --debug --bundles "$bundles" --ci ${sign[@]+"${sign[@]}"}
else
  profile=release
  "$tauri" build --bundles "$bundles" --ci ${sign[@]+"${sign[@]}"}
fi
ls -l "$CARGO_TARGET_DIR/$profile"/bundle/*/
fail() { echo "package check: $*" >&2; exit 1; }
case "$bundles" in
  deb)
    # The desktop entry must hand a clicked parley:// link to the app (%u) and claim the scheme.
    deb=$(ls -t "$CARGO_TARGET_DIR/$profile"/bundle/deb/*.deb | head -1)
    entry=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO usr/share/applications/Parley.desktop)
    echo "$entry"
    grep -qx 'Exec=parley-desktop %u' <<<"$entry" || fail "desktop entry does not open links"
    grep -q '^MimeType=.*x-scheme-handler/parley' <<<"$entry" || fail "no parley:// scheme"
    # libvpx inside the executable, and no package of it asked for.
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "Depends: $depends"
    if grep -qi vpx <<<"$depends"; then fail "the .deb depends on a libvpx package"; fi
    unpacked=$(mktemp -d)
    dpkg-deb -x "$deb" "$unpacked"
    needed=$(readelf -d "$unpacked/usr/bin/parley-desktop" | grep NEEDED)
    rm -rf "$unpacked"
    if grep -qi vpx <<<"$needed"; then fail "parley-desktop loads libvpx dynamically"; fi
    echo "libvpx: linked into parley-desktop (no libvpx among its $(wc -l <<<"$needed") libraries)"
    ;;
  app,dmg)
    app=$(ls -d "$CARGO_TARGET_DIR/$profile"/bundle/macos/*.app | head -1)
    for exe in "$app"/Contents/MacOS/*; do
      if otool -L "$exe" | grep -qi vpx; then fail "$exe loads libvpx dynamically"; fi
    done
    ;;
esac
