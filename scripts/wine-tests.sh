#!/usr/bin/env bash
# Parley's server and shared crates as Windows programs: built for x86_64-pc-windows-gnu with
# Debian's mingw-w64 (linked for real, C included: SQLite, ring) and their tests run under
# Debian's Wine, each test executable a Windows process using Windows' file, socket and path
# APIs (the data folder under %LOCALAPPDATA%, SQLite's file, Winsock on loopback).
#
#   scripts/wine-tests.sh [TEST FILTER...]
#   scripts/wine-tests.sh --cli     only the parley-cli.exe part below
#
# Then (without a filter) parley-cli.exe, the engine built for Windows (WebRTC, Opus, VP8 with
# libvpx built by scripts/cross/libvpx.sh, the Windows camera, sound and screen crates),
# against a Linux server and a Linux parley-cli: engine/tests/cli.rs, a_windows_cli_under_wine_….
#
# What cannot run here is said in README ("Windows under Wine"). The standard library:
# scripts/cross/std.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t=x86_64-pc-windows-gnu
u=${t//-/_}

scripts/deps.sh --debs wine64 gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix cmake \
  yasm dpkg-dev libvpx-dev
host_target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
host_vpx=() # env's arguments: the unset ones first (env stops reading options at NAME=VALUE)
for v in VPX_LIB_DIR VPX_INCLUDE_DIR VPX_STATIC VPX_VERSION; do
  if [ -n "${!v:-}" ]; then host_vpx+=("$v=${!v}"); else host_vpx=(-u "$v" "${host_vpx[@]}"); fi
done
# shellcheck source=scripts/cross/std.sh
source scripts/cross/std.sh
std_for "$t"

# mingw-w64's POSIX-threads flavour: what Rust's windows-gnu target and C++ code expect.
export "CARGO_TARGET_${u^^}_LINKER=x86_64-w64-mingw32-gcc-posix"
export "CC_$u=x86_64-w64-mingw32-gcc-posix" "CXX_$u=x86_64-w64-mingw32-g++-posix" "AR_$u=x86_64-w64-mingw32-ar"
export "CARGO_TARGET_${u^^}_RUNNER=$root/scripts/cross/wine"

# A Wine prefix of Parley's own (scripts/cross/wine), made once.
export PARLEY_WINEPREFIX="${PARLEY_WINEPREFIX:-$HOME/.cache/parley-wine}"
if [ ! -f "$PARLEY_WINEPREFIX/system.reg" ]; then
  echo "== a Wine prefix in $PARLEY_WINEPREFIX"
  WINEPREFIX="$PARLEY_WINEPREFIX" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
    scripts/cross/wine wineboot --init >/dev/null 2>&1 || true
fi
# Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks (see the file).
sys32="$PARLEY_WINEPREFIX/drive_c/windows/system32"
if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
  echo "== this Wine has no bcryptprimitives.dll: scripts/cross/bcryptprimitives.c stands in"
  x86_64-w64-mingw32-gcc-posix -shared -O2 -s -o "$sys32/bcryptprimitives.dll" \
    scripts/cross/bcryptprimitives.c -ladvapi32
fi

if [ "${1:-}" = --cli ]; then
  shift
else
  echo "== the server's and shared's tests as Windows programs under Wine ($std_source)"
  cargo_t test --target "$t" -p parley-shared -p parley-server --locked -- "$@"
  [ $# -eq 0 ] || exit 0
fi

echo "== parley-cli.exe under Wine against a Linux server and a Linux parley-cli"
# shellcheck source=scripts/cross/libvpx.sh
source scripts/cross/libvpx.sh
libvpx_for_mingw "$cache"
# Opus's own build turns on the stack protector and _FORTIFY_SOURCE: with mingw-w64 their
# runtime is libssp, linked statically into the executable (a flag for the binary only).
cargo_t rustc --target "$t" -p parley-engine --bin parley-cli --locked -- -C "link-args=-l:libssp.a -ladvapi32 -lmsvcrt"
# The test runs parley-cli with a cleared environment: a launcher carries the Wine prefix.
launcher="$CARGO_TARGET_DIR/$t/debug/parley-cli-wine"
cat >"$launcher" <<EOF
#!/bin/sh
# parley-cli.exe under Wine (written by scripts/wine-tests.sh)
PARLEY_WINEPREFIX='$PARLEY_WINEPREFIX' exec '$root/scripts/cross/wine' '$CARGO_TARGET_DIR/$t/debug/parley-cli.exe' "\$@"
EOF
chmod +x "$launcher"
# The Linux side as the rest of the test run builds it (its libvpx settings, its cache).
env "${host_vpx[@]}" CARGO_TARGET_DIR="$host_target_dir" PARLEY_TEST_WINE_CLI="$launcher" \
  cargo test --workspace --test cli --locked -- a_windows_cli_under_wine
