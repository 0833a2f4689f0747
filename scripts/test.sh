#!/usr/bin/env bash
# Runs every check and test Parley has: formatting, clippy, the unit and integration tests on
# SQLite, the keychain test inside a private D-Bus session with a throwaway gnome-keyring, the
# audio-device test inside a private PulseAudio with virtual devices, then
# the same server integration suite on a throwaway PostgreSQL on 127.0.0.1.
# Installs what it needs first (scripts/deps.sh). `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step is printed with the time since the start, and at the end (passed or not) every
# step's own minutes (the table in BENCHMARKS.md, "The test run"), to see where they go.
steps=() step_start=0
step() {
  [ -z "${step_name:-}" ] || steps+=("$(printf '%4ds  %s' $((SECONDS - step_start)) "$step_name")")
  step_name="$*" step_start=$SECONDS
  printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
}
step_times() {
  step ""
  echo "== seconds per step (total $((SECONDS / 60))m$((SECONDS % 60))s)"
  printf '%s\n' "${steps[@]}"
}
trap step_times EXIT
step "set-up: Debian packages, the pinned toolchain, tauri-driver (scripts/deps.sh)"
scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
# Every build here links libvpx statically, as the installers do, so the installer step
# packages the very binary the tests ran (no release build in the test run).
# shellcheck source=scripts/static-vpx.sh
source scripts/static-vpx.sh
static_vpx Linux
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=0
# Incremental caches only grow (each clone's path gets its own); tests gain nothing from them.
export CARGO_INCREMENTAL=0
# Keep the shared build cache bounded: test executables and Parley's own libraries not rebuilt
# for a day are stale (of earlier commits and feature sets; 30 GB of them once filled the disk),
# and incremental data is never needed here. Proc-macro libraries (.so, executable too) stay:
# deleting one rebuilds every crate that uses it.
# The same for the other targets' cache (scripts/cross/std.sh).
for deps in "$CARGO_TARGET_DIR/debug/deps" "${PARLEY_CROSS_TARGET_DIR:-$HOME/.cache/parley-target-cross}"/{,*/}debug/deps; do
  [ -d "$deps" ] || continue
  find "$deps" -maxdepth 1 -type f -mtime +0 \
    \( \( -executable ! -name '*.so' \) -o -name 'libparley_*' \) -delete 2>/dev/null || true
  rm -rf "$deps/../incremental"
done

step "Windows and macOS builds pull in no Linux-only crate (cargo tree per target)"
linux_only='^(xcb|alsa|alsa-sys|libspa|libspa-sys|pipewire|pipewire-sys)$'
for target in x86_64-pc-windows-msvc aarch64-apple-darwin x86_64-apple-darwin; do
  crates=$(cargo tree --workspace --locked --target "$target" -e normal --prefix none | sed 's/ v[0-9].*//' | sort -u)
  bad=$(grep -E "$linux_only" <<<"$crates" || true)
  # WebRTC's audio processing builds on macOS (bundled), not with MSVC.
  [[ $target == *windows* ]] && bad+=$(grep -E '^webrtc-audio-processing' <<<"$crates" || true)
  [ -z "$bad" ] || { echo "$target would build Linux-only crates: $bad" >&2; exit 1; }
done

step "desktop front end: npm ci, svelte-check, vite build"
scripts/ui.sh

step "Windows (MSVC) and macOS compiled: clippy -D warnings per target (scripts/check-targets.sh)"
scripts/check-targets.sh

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt --all -- --check)  # its own workspace (cargo fuzz's nightly build)

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo clippy: the server's benchmark-only build without chat storage (scripts/bench-signaling-unstored.sh)"
cargo clippy -p parley-server --lib --features bench-unstored-chat --locked -- -D warnings

step "tests on SQLite"
# Every later cargo step selects its tests with --workspace --test NAME, never -p: with -p,
# cargo resolves the dependencies' features for that package alone and builds them again.
cargo test --workspace --locked

# The fuzz targets' build (nightly, its own cache) goes on in the background, at the lowest
# priority, while the next steps mostly wait on browsers, sockets and sound; the fuzzing step
# waits for it. On a new machine that hides most of a ten-minute build.
fuzz_log=$(mktemp)
# (its own process group: if this run stops early, the whole build is stopped with it)
PARLEY_FUZZ_DEV=1 setsid nice -n 19 scripts/fuzz.sh build >"$fuzz_log" 2>&1 &
fuzz_build=$!
trap 'kill -- -"$fuzz_build" 2>/dev/null || true; step_times' EXIT

step "the API against its own OpenAPI description: schemathesis, every check, every operation"
scripts/schemathesis.sh cargo test --workspace --test api --locked api_fuzz

step "keychain: parley-cli against a throwaway gnome-keyring"
scripts/keychain.sh env PARLEY_TEST_KEYCHAIN=1 \
  cargo test --workspace --test cli --locked keychain
step "keychain: the desktop app's sign-in against a throwaway gnome-keyring"
scripts/keychain.sh env PARLEY_TEST_KEYCHAIN=1 \
  cargo test --workspace --test account --locked

step "desktop end-to-end: the app in Xvfb through tauri-driver, signed in via a throwaway keychain"
cargo build --workspace --bin parley-cli --locked  # the E2E meeting's CLI participant
scripts/keychain.sh env PARLEY_TEST_E2E=1 \
  cargo test --workspace --test e2e --locked -- --test-threads=1

step "mixed meeting: the desktop app, parley-cli and a Chromium guest, inside a network namespace"
cargo build --workspace --bin parley-desktop --locked  # built outside the namespace (cargo may fetch)
scripts/browsers.sh scripts/keychain.sh env PARLEY_TEST_E2E=1 \
  cargo test --workspace --test e2e --locked -- --test-threads=1 a_meeting_of_the_app_a_cli_and_a_browser_guest

step "interop: an independent WebRTC peer (aiortc) and parley-cli, both offer directions"
scripts/interop.sh cargo test --workspace --test interop --locked

step "browsers: Chromium and Firefox ESR guests meet parley-cli, inside a network namespace"
# PulseAudio: Firefox runs no AudioContext without a sound server.
scripts/pulse.sh scripts/browsers.sh cargo test --workspace --test browser --locked -- --test-threads=1

step "real audio path: parley-cli through a private PulseAudio"
# One at a time: both tests play into and record from the same virtual devices.
scripts/pulse.sh cargo test --workspace --test cli --locked -- --test-threads=1 tone_into echo_cancellation

step "Windows programs under Wine: the server's and shared's tests (scripts/wine-tests.sh)"
scripts/wine-tests.sh

step "integration tests on PostgreSQL"
# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh
pg_start
trap 'kill -- -"$fuzz_build" 2>/dev/null || true; pg_stop; step_times' EXIT
cargo test --workspace --test api --locked

step "installer: the .deb builds (from the tested debug build), and its desktop entry opens parley:// links"
scripts/package.sh --debug
step "installer prerequisites on macOS and Windows: a machine without them is told what is missing"
bare="$(mktemp -d)"  # a PATH with nothing but what the script itself runs
ln -s "$(command -v bash)" "$(command -v dirname)" "$bare/"
for os in Darwin Windows; do
  # (and without the libvpx location this run gives every build)
  if out=$(unset VPX_LIB_DIR VPX_INCLUDE_DIR VPX_STATIC VPX_VERSION
    PARLEY_PACKAGE_OS=$os PATH="$bare" bash scripts/package.sh --check 2>&1); then
    echo "package.sh --check passed on a bare $os: $out" >&2; exit 1
  fi
  for what in cargo npm cmake libvpx; do
    grep -q "^  - $what: " <<<"$out" || { echo "not named on $os: $what in: $out" >&2; exit 1; }
  done
done
PARLEY_PACKAGE_OS=Linux scripts/package.sh --check
step "macOS bundle: camera and microphone usage strings, hardened-runtime entitlements"
python3 - <<'PY'
import json, plistlib
info = plistlib.load(open("src-tauri/Info.plist", "rb"))
for key in ("NSCameraUsageDescription", "NSMicrophoneUsageDescription"):
    assert info.get(key, "").strip(), f"Info.plist lacks {key}"
conf = json.load(open("src-tauri/tauri.conf.json"))["bundle"]["macOS"]
ent = plistlib.load(open("src-tauri/" + conf["entitlements"], "rb"))
for key in ("com.apple.security.device.camera", "com.apple.security.device.audio-input"):
    assert ent.get(key) is True, f"entitlements lack {key}"
assert conf.get("hardenedRuntime", True), "hardened runtime off"
print("macOS bundle files: ok")
PY
step "macOS tray icon: a template image (black and transparent only, 22 pt at 2x)"
[ "$(identify -format '%wx%h' icons/tray-template.png)" = 44x44 ] || { echo "tray-template.png is not 44x44" >&2; exit 1; }
# The brightest colour anywhere is black; something is drawn (alpha not all zero).
[ "$(convert icons/tray-template.png -alpha off -format '%[fx:maxima]' info:)" = 0 ] || { echo "tray-template.png has colour" >&2; exit 1; }
[ "$(convert icons/tray-template.png -alpha extract -format '%[fx:maxima]' info:)" = 1 ] || { echo "tray-template.png is empty" >&2; exit 1; }
rm -rf "$bare"

step "fuzzing smoke: every cargo-fuzz target for 5 s from its seeds, unoptimised build (scripts/fuzz.sh TARGET SECONDS runs one longer)"
wait "$fuzz_build" || { cat "$fuzz_log" >&2; echo "the fuzz targets' build failed" >&2; exit 1; }
rm -f "$fuzz_log"
PARLEY_FUZZ_DEV=1 scripts/fuzz.sh all 5

step "benchmark smoke: every benchmark harness, tiny, no timing checks, on the debug build"
# The harnesses run on the binaries the tests built: a release build would double a cold run.
# Figures come only from the scripts run by hand (release, BENCHMARKS.md).
export PARLEY_BENCH_PROFILE=dev
scripts/bench-signaling.sh 1 40 --rates 1,2 --phase-secs 1
scripts/bench-signaling-floor.sh 1 200 5 8   # perf on both servers; fails if it saw no sends
scripts/bench-join.sh 1 2
scripts/bench-browser-join.sh 1 2
scripts/bench-abuse.sh 1 100 8 8 --secs 5 --guests 20
scripts/bench-soak.sh 1 40 20 --warmup-secs 5 --sample-secs 2 --stay-secs 3,8 --tolerance 1
scripts/bench-call-soak.sh 1 75 --warmup-secs 20 --outage-every-secs 30 --outage-secs 5 \
  --toggle-every-secs 10 --share-every-secs 40 --share-secs 15 --tolerance 1
scripts/browsers.sh scripts/bench-media.sh 1 2 "2:320x240:300 chromium:320x240:300"  # in a namespace
