# Sourced by scripts/package.sh and scripts/test.sh.
# Every installer carries libvpx inside the executable (static linking): no runtime package
# to match (Debian 12's libvpx7 is Ubuntu 24.04's libvpx9), no Homebrew dylib on a user's
# Mac. Sets VPX_STATIC + VPX_LIB_DIR (+ VPX_INCLUDE_DIR, VPX_VERSION) from pkg-config and the
# static archive's location, unless VPX_LIB_DIR is already given.
static_vpx() { # OS (Linux, macOS, Windows)
  local os="$1"
  if [ -n "${VPX_LIB_DIR:-}" ]; then
    # Windows: vcpkg's libvpx is a static vpx.lib whatever the triplet; VPX_STATIC would ask
    # for libvpx.lib, a name vcpkg does not use.
    if [ "$os" = Windows ]; then
      [ -f "$VPX_LIB_DIR/vpx.lib" ] || { echo "no vpx.lib in VPX_LIB_DIR ($VPX_LIB_DIR)" >&2; exit 1; }
    fi
    return
  fi
  local archive
  case "$os" in
    # Debian's vpx.pc names /usr/lib, not the multiarch directory the archive is in.
    Linux) archive=$("${CC:-cc}" -print-file-name=libvpx.a) ;;
    macOS) archive="$(pkg-config --variable=libdir vpx)/libvpx.a" ;;
    *) return ;;
  esac
  if [ ! -f "$archive" ]; then
    echo "libvpx has no static archive (libvpx.a) here: install it (Debian: libvpx-dev;" \
      "macOS: brew install libvpx), or set VPX_LIB_DIR, VPX_INCLUDE_DIR and VPX_VERSION" >&2
    exit 1
  fi
  VPX_LIB_DIR=$(cd "$(dirname "$archive")" && pwd)
  VPX_INCLUDE_DIR=$(pkg-config --variable=includedir vpx)
  VPX_VERSION=$(pkg-config --modversion vpx)
  export VPX_STATIC=1 VPX_LIB_DIR VPX_INCLUDE_DIR VPX_VERSION
  echo "libvpx $VPX_VERSION linked statically from $VPX_LIB_DIR"
}
