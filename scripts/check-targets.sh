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
# The standard library of a target: rustup's, where `rustup target add` can fetch it; else
# (a machine that reaches Debian's mirror but not static.rust-lang.org) the sources of exactly
# the pinned toolchain's version (rust-toolchain.toml) from Debian's trixie-backports `rust-src`,
# fetched under a private APT configuration (the machine's sources stay as they are), put into
# a hard-linked copy of the toolchain, and built with `-Zbuild-std` (RUSTC_BOOTSTRAP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
targets=("$@")
((${#targets[@]})) || targets=(x86_64-pc-windows-msvc aarch64-apple-darwin)
members=(-p parley-shared -p parley-server -p parley-engine -p parley-desktop -p parley-test-support)

# (autotools: the bundled WebRTC audio processing macOS builds configures itself with them)
scripts/deps.sh --debs ninja-build cmake clang libclang-dev libvpx-dev pkg-config autoconf automake libtool
version=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
host=$(rustc -vV | sed -n 's/^host: //p')
cache="${PARLEY_CROSS_CACHE:-$HOME/.cache/parley-cross}"
export CARGO_TARGET_DIR="${PARLEY_CROSS_TARGET_DIR:-$HOME/.cache/parley-target-cross}"
export CARGO_INCREMENTAL=0

# The pinned toolchain with its standard library's sources, from Debian (see above). Prints the
# rustup name of the toolchain.
src_toolchain() {
  local name="parley-$version-src" dir="$cache/toolchain-$version-src"
  if [ ! -f "$dir/lib/rustlib/src/rust/library/Cargo.lock" ]; then
    local apt="$cache/apt" sysroot
    sysroot=$(rustc --print sysroot)
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/preferences.d"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" >"$apt/sources.list"
    cat >"$apt/apt.conf" <<EOF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "/nonexistent";
Dir::Etc::PreferencesParts "$apt/preferences.d";
Dir::State::Lists "$apt/lists";
Dir::Cache "$apt";
Dir::Cache::archives "$apt/archives";
Dir::State::status "/var/lib/dpkg/status";
APT::Sandbox::User "root";
EOF
    export APT_CONFIG="$apt/apt.conf"
    apt-get update -qq >&2
    local deb
    deb=$(apt-cache madison rust-src | awk -v v="$version+dfsg" '$3 ~ "^"v {print $3; exit}')
    [ -n "$deb" ] || { echo "Debian's trixie-backports has no rust-src $version" >&2; exit 1; }
    echo "== rust-src $deb from Debian's trixie-backports, for -Zbuild-std" >&2
    (cd "$apt" && rm -f rust-src_*.deb && apt-get download -qq "rust-src=$deb" >&2)
    unset APT_CONFIG
    rm -rf "$dir" "$apt/x"
    mkdir -p "$dir" "$apt/x"
    cp -al "$sysroot/." "$dir/"   # hard links: no second copy of the toolchain on disk
    dpkg-deb -x "$apt"/rust-src_*.deb "$apt/x"
    # Debian's lib/rustlib/src/rust is a link to /usr/src/rustc-VERSION; only library/ is used.
    mkdir -p "$dir/lib/rustlib/src/rust"
    rm -rf "$dir/lib/rustlib/src/rust/library"
    mv "$apt/x/usr/src/rustc-$version/library" "$dir/lib/rustlib/src/rust/library"
    rm -rf "$apt/x" "$apt"/rust-src_*.deb
  fi
  rustup toolchain list | grep -q "^$name" || rustup toolchain link "$name" "$dir" >&2
  echo "$name"
}

# The stand-ins of scripts/cross (a compiler writing empty objects, an archiver), and what the
# C dependencies' build scripts need to get past their configuration on a foreign target.
target_env() {
  local t="$1" u="${1//-/_}" x="$root/scripts/cross"
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
  if rustup target list --installed | grep -qx "$t" || rustup target add "$t" >/dev/null 2>&1; then
    echo "== clippy for $t (rustup's standard library)"
    cargo clippy --target "$t" "${members[@]}" --all-targets --locked -- -D warnings
  else
    tc=$(src_toolchain)
    echo "== clippy for $t (standard library built from Debian's rust-src $version)"
    RUSTC_BOOTSTRAP=1 cargo "+$tc" clippy -Zbuild-std=std,panic_abort --target "$t" \
      "${members[@]}" --all-targets --locked -- -D warnings
  fi
done
