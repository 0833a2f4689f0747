# Sourced by scripts/check-targets.sh and scripts/wine-tests.sh: a target's standard library.
# rustup's, where `rustup target add` can fetch it; else (a machine that reaches Debian's
# mirror but not static.rust-lang.org) the sources of exactly the pinned toolchain's version
# (rust-toolchain.toml) from Debian's trixie-backports `rust-src`, fetched under a private APT
# configuration (the machine's apt sources stay as they are), put into a hard-linked copy of
# the toolchain and built with `-Zbuild-std` (RUSTC_BOOTSTRAP=1).
# PARLEY_CROSS_STD=src takes the second way even where the first would work (to test it).

version=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
host=$(rustc -vV | sed -n 's/^host: //p')
cache="${PARLEY_CROSS_CACHE:-$HOME/.cache/parley-cross}"
# Apart from the main build cache: the -Zbuild-std toolchain is another sysroot, and the
# targets' artifacts would only crowd it.
export CARGO_TARGET_DIR="${PARLEY_CROSS_TARGET_DIR:-$HOME/.cache/parley-target-cross}"
export CARGO_INCREMENTAL=0

# The pinned toolchain with its standard library's sources, from Debian. Prints the rustup
# name of the toolchain.
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

# Chooses where target $1's standard library comes from: sets std_source (what to say) and
# cargo_args, which cargo_t puts in front of a cargo command's arguments.
std_for() {
  local t="$1"
  if [ "${PARLEY_CROSS_STD:-}" != src ] &&
    { rustup target list --installed | grep -qx "$t" || rustup target add "$t" >/dev/null 2>&1; }; then
    std_source="rustup's standard library"
    cargo_tc=() build_std=()
  else
    local tc
    tc=$(src_toolchain)
    std_source="standard library built from Debian's rust-src $version"
    cargo_tc=("+$tc") build_std=(-Zbuild-std=std,panic_abort)
  fi
}
# cargo_t SUBCOMMAND ARGS...: cargo with the toolchain and std std_for chose.
cargo_t() {
  local sub="$1"
  shift
  if ((${#build_std[@]})); then
    RUSTC_BOOTSTRAP=1 cargo "${cargo_tc[@]}" "$sub" "${build_std[@]}" "$@"
  else
    cargo "$sub" "$@"
  fi
}
