# Sourced by scripts/wine-tests.sh: libvpx (VP8 only) built for Windows with mingw-w64, for
# parley-cli.exe. Debian ships libvpx for Linux only, so this builds Debian's own source
# package (the version and security patches Linux builds use) once, into the cross cache, and
# exports what env-libvpx-sys reads (VPX_LIB_DIR, VPX_INCLUDE_DIR, VPX_VERSION, VPX_STATIC).
#
#   libvpx_for_mingw CACHE_DIR
libvpx_for_mingw() {
  local cache="$1" version
  version=$(dpkg-query -W -f='${Version}' libvpx-dev) # e.g. 1.12.0-1+deb12u5
  local dir="$cache/libvpx-$version-x86_64-w64-mingw32"
  if [ ! -f "$dir/lib/libvpx.a" ]; then
    local apt="$cache/apt-src" codename
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/preferences.d"
    # The source package, under a private APT configuration: the machine's sources stay as
    # they are (they carry no deb-src lines).
    cat >"$apt/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $codename main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $codename-security main
EOF
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
    echo "== libvpx $version for Windows: Debian's source package, built with mingw-w64" >&2
    local work="$cache/libvpx-build"
    rm -rf "$work" && mkdir -p "$work"
    (
      cd "$work"
      export APT_CONFIG="$apt/apt.conf"
      apt-get update -qq
      apt-get source -qq --download-only "libvpx=$version"
      dpkg-source -x --no-check ./*.dsc src >/dev/null
      cd src
      # VP8 only (Parley's one video codec), no tools, tests or docs; yasm for the SIMD code.
      CROSS=x86_64-w64-mingw32- CC=x86_64-w64-mingw32-gcc-posix \
        ./configure --target=x86_64-win64-gcc --prefix="$dir" --disable-vp9 \
        --disable-examples --disable-tools --disable-docs --disable-unit-tests \
        --enable-static --disable-shared >/dev/null
      # Its compiler warnings are libvpx's own: kept in a log, shown only if the build fails.
      make -s -j"$(nproc)" >build.log 2>&1 || { tail -40 build.log; exit 1; }
      make -s install >/dev/null
    ) >&2
    rm -rf "$work"
  fi
  export VPX_LIB_DIR="$dir/lib" VPX_INCLUDE_DIR="$dir/include" VPX_STATIC=1
  export VPX_VERSION="${version%%-*}"
}
