#!/usr/bin/env bash
# Parley's server and shared crates as Windows programs: built for x86_64-pc-windows-gnu with
# Debian's mingw-w64 (linked for real, C included: SQLite, ring) and their tests run under
# Debian's Wine, each test executable a Windows process using Windows' file, socket and path
# APIs (the data folder under %LOCALAPPDATA%, SQLite's file, Winsock on loopback).
#
#   scripts/wine-tests.sh [TEST FILTER...]
#
# What cannot run here is said in README ("Windows under Wine"). The standard library:
# scripts/cross/std.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t=x86_64-pc-windows-gnu
u=${t//-/_}

scripts/deps.sh --debs wine64 gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix cmake
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

echo "== the server's and shared's tests as Windows programs under Wine ($std_source)"
cargo_t test --target "$t" -p parley-shared -p parley-server --locked -- "$@"
