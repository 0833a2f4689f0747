#!/usr/bin/env bash
# Installs what building and testing Parley needs on Debian/Ubuntu. Idempotent and quiet when
# everything is already there. Used by scripts/run.sh, scripts/test.sh and .ci/run.
set -euo pipefail

# Debian packages for the crates' C builds (WebKitGTK, xdo, appindicator and rsvg for the Tauri
# desktop app, OpenSSL, D-Bus for the keychain, libvpx for VP8,
# libclang for nokhwa's V4L2 bindings, ALSA for cpal, WebRTC audio processing for echo cancellation,
# cmake for the bundled libopus, PipeWire/Wayland/GBM/XCB-RandR for xcap's screen capture), and the tests
# (PostgreSQL; dbus + gnome-keyring for a throwaway Secret Service; PulseAudio with null sinks
# standing in for sound hardware; Xvfb as a screen to share and a display for the app;
# WebKitWebDriver, trayer and xdotool to drive the app; ImageMagick for screenshots; perf for
# scripts/bench-signaling-floor.sh).
PACKAGES=(build-essential pkg-config cmake clang libclang-dev libssl-dev libdbus-1-dev libvpx-dev libasound2-dev
  libwebrtc-audio-processing-dev libpipewire-0.3-dev libwayland-dev libgbm-dev libxcb-randr0-dev
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev
  postgresql dbus gnome-keyring pulseaudio pulseaudio-utils libasound2-plugins xvfb xauth x11-utils
  webkit2gtk-driver dbus-x11 trayer xdotool imagemagick linux-perf
  fonts-noto-color-emoji)

# Installs the Debian packages named that are not installed yet.
install_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "== installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Waits for another apt or dpkg run (an unattended upgrade, a second script) instead of
  # failing at once on its lock.
  local wait=(-o DPkg::Lock::Timeout=900)
  $sudo apt-get "${wait[@]}" update -qq
  $sudo apt-get "${wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# `scripts/deps.sh --debs PKG...`: only those packages (what one script alone needs, such as
# scripts/check-targets.sh's cross compilers and Wine).
if [ "${1:-}" = --debs ]; then
  shift
  install_debs "$@"
  exit 0
fi
install_debs "${PACKAGES[@]}"

# The toolchain is pinned in rust-toolchain.toml. Where rustup cannot download it (a machine
# without access to static.rust-lang.org) but its one stable toolchain is that very version,
# the stable toolchain is taken under the pinned name. Done before anything runs cargo here.
pinned=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$(dirname "$0")/../rust-toolchain.toml")
if command -v rustup >/dev/null 2>&1 && ! rustup toolchain list | grep -q "^$pinned-"; then
  stable=$(rustup run stable rustc --version 2>/dev/null | awk '{print $2}')
  if [ "$stable" = "$pinned" ]; then
    home="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
    host=$(rustup run stable rustc -vV | sed -n 's/^host: //p')
    ln -s "stable-$host" "$home/$pinned-$host"
    echo "== Rust $pinned: the stable toolchain, under the pinned name"
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs), then run this again" >&2
  exit 1
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 || true
done

# The desktop app's front end (ui/) is built with Node.js and npm (Debian 12's Node 18 is too
# old for Vite 8: Node 20.19 or newer).
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js 20.19+ (https://nodejs.org), then run this again" >&2
  exit 1
fi

# tauri-driver drives the desktop app in the end-to-end tests (WebDriver, through Debian's
# WebKitWebDriver). Built from source once; kept in ~/.cargo/bin.
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
  echo "== installing tauri-driver (cargo install, once)"
  cargo install tauri-driver --locked --version '^2' --quiet
fi
