#!/usr/bin/env bash
# Compiles Parley's Windows and macOS code on Linux: `cargo clippy -D warnings`, all targets
# (tests, benches, examples), for x86_64-pc-windows-msvc and aarch64-apple-darwin, over the
# members with platform code (the app, the engine, the server, shared, the test fixtures).
#
#   scripts/check-targets.sh [TARGET...]
#
# What it proves: every Rust line of those targets, `cfg(windows)` and `cfg(target_os =
# "macos")` ones included, type-checks and passes clippy against the target's real standard
# library and the dependencies' real target APIs (windows-sys, objc2, tauri's wry...).
# What it does not: C and C++ are not compiled for these targets (no Windows SDK or macOS SDK
# here): scripts/cross/cc stands in for the compiler and writes empty objects, so nothing is
# linked and nothing runs. Windows binaries that really link and run are scripts/wine-tests.sh
# (x86_64-pc-windows-gnu with mingw-w64, under Wine).
#
# The targets' standard libraries: rustup's, or built from Debian's rust-src (scripts/cross/std.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
((${#targets[@]})) || targets=(x86_64-pc-windows-msvc aarch64-apple-darwin)
members=(-p parley-shared -p parley-server -p parley-engine -p parley-desktop -p parley-test-support)

# (autotools: the bundled WebRTC audio processing macOS builds configures itself with them)
scripts/deps.sh --debs ninja-build cmake clang libclang-dev libvpx-dev pkg-config autoconf automake libtool
# shellcheck source=scripts/cross/std.sh
source scripts/cross/std.sh

# The stand-ins of scripts/cross (a compiler writing empty objects, an archiver), and what the
# C dependencies' build scripts need to get past their configuration on a foreign target.
# They are copied to one place outside the checkout: build scripts rerun when CC_<target>
# changes, and a path inside each fresh clone would rebuild every C dependency (and all that
# depends on one) on every run.
stand_ins="$cache/bin"
mkdir -p "$stand_ins"
for f in cc ar; do
  cmp -s "scripts/cross/$f" "$stand_ins/$f" || cp "scripts/cross/$f" "$stand_ins/$f"
done
ln -sf cc "$stand_ins/c++"
target_env() {
  local t="$1" u="${1//-/_}" x="$stand_ins"
  export "CC_$u=$x/cc" "CXX_$u=$x/c++" "AR_$u=$x/ar"
  # cmake's Visual Studio generator does not exist here; Ninja runs the stand-in compiler.
  export "CMAKE_GENERATOR_$u=Ninja"
  # bindgen (libvpx, nokhwa's bindings) parses C headers as a host of the same pointer width.
  export "BINDGEN_EXTRA_CLANG_ARGS_$u=--target=$host"
  # env-libvpx-sys asks pkg-config, which refuses to cross-compile: its own variables instead
  # (Debian's libvpx headers; nothing is linked).
  export VPX_VERSION VPX_INCLUDE_DIR VPX_LIB_DIR=/nonexistent
  VPX_VERSION=$(pkg-config --modversion vpx)
  VPX_INCLUDE_DIR=$(pkg-config --variable=includedir vpx)
}

[ -f ui/dist/index.html ] || scripts/ui.sh  # tauri::generate_context! embeds the front end

for t in "${targets[@]}"; do
  target_env "$t"
  std_for "$t"
  echo "== clippy for $t ($std_source)"
  cargo_t clippy --target "$t" "${members[@]}" --all-targets --locked -- -D warnings
done
