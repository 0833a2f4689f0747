#!/usr/bin/env bash
# webrtc 0.17 against 0.21 (issue 15; docs/decisions.md "webrtc 0.17 or 0.21"), in one run:
# the same client built on each line (0.21: `--features webrtc-021`, engine/src/rtc/v021/), and
# 0.21 once more with its send-side GCC and pacer setting the rate instead of Parley's
# controller (PARLEY_RTC021_GCC=1). Three measurements, interleaved per run:
#   - join time: `parley-bench join` (REST join to the first decoded frame, 20 joins a run);
#   - CPU, memory and latency of the two-party 640x480 call (scripts/bench-media.sh);
#   - the impairment tests (engine/tests/impairment.rs: 5 % loss + 50 ms through TURN, a
#     300 kbit/s cap, a 6 s outage, a 12 s outage), pass/fail and the figures they print.
#
#   scripts/bench-rtc-lines.sh [RUNS=3] [JOINS=20]
# The 0.21 build lives in its own target directory ($HOME/.cache/parley-target-021).
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-3}" joins="${2:-20}"
main_target="$CARGO_TARGET_DIR"
alt_target="$HOME/.cache/parley-target-021"
out="bench/results/rtc-lines"
mkdir -p "$out"

echo "== building both lines (release binaries, impairment test binaries)" >&2
cargo build --quiet --release --locked -p parley-server -p parley-engine -p parley-bench >&2
CARGO_TARGET_DIR="$alt_target" cargo build --quiet --release --locked -p parley-server \
  -p parley-engine -p parley-bench --features parley-engine/webrtc-021 >&2
test_bin() { # TARGET_DIR [FEATURES]: path of the impairment test binary
  CARGO_TARGET_DIR="$1" cargo test --locked -p parley-engine ${2:+--features "$2"} --test impairment \
    --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*impairment[^"]*"' | tail -1 | cut -d'"' -f4
}
t017=$(test_bin "$main_target")
t021=$(test_bin "$alt_target" webrtc-021)

# bench-media takes another build as a directory holding parley-server and parley-cli.
dir021="$HOME/.cache/parley-webrtc021" gcc="$HOME/.cache/parley-webrtc021-gcc"
mkdir -p "$dir021" "$gcc"
cp "$alt_target/release/parley-server" "$alt_target/release/parley-cli" "$dir021/"
cp "$alt_target/release/parley-server" "$gcc/"
printf '#!/bin/sh\nPARLEY_RTC021_GCC=1 exec "%s/parley-cli" "$@"\n' "$dir021" > "$gcc/parley-cli"
chmod +x "$gcc/parley-cli"

lines=(0.17 0.21 0.21-gcc)
bench_of() { case $1 in 0.17) echo "$main_target/release/parley-bench" ;; *) echo "$alt_target/release/parley-bench" ;; esac; }
tests_of() { case $1 in 0.17) echo "$t017" ;; *) echo "$t021" ;; esac; }
gcc_of() { [ "$1" = 0.21-gcc ] && echo 1 || echo 0; }

for r in $(seq "$runs"); do
  for l in "${lines[@]}"; do
    echo "== run $r: join, $l" >&2
    env PARLEY_RTC021_GCC="$(gcc_of "$l")" "$(bench_of "$l")" join --joins "$joins" \
      --json "$out/join-$l-$r.json" > "$out/join-$l-$r.txt"
    echo "== run $r: impairment tests, $l" >&2
    env PARLEY_RTC021_GCC="$(gcc_of "$l")" "$(tests_of "$l")" --test-threads=1 --nocapture \
      > "$out/impairment-$l-$r.txt" 2>&1 || true
  done
done
echo "== media (bench-media, the three lines in each run)" >&2
scripts/bench-media.sh "$runs" 10 "2:640x480:800 2:640x480:800::$dir021 2:640x480:800::$gcc" \
  > "$out/media.txt"

hdr="${lines[0]} | ${lines[1]} | ${lines[2]}"
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (!NR) { print "nan"; exit } r = int(NR * p + 0.999999); if (r < 1) r = 1; print v[r] }'; }
echo
echo "| join, ms after the join command (median of $runs runs' p50) | $hdr |"
echo "|---|---|---|---|"
for step in "WebSocket welcome" "ICE connected" "DTLS connected" "first decoded frame"; do
  row="| $step p50"
  for l in "${lines[@]}"; do
    row+=" | $(for r in $(seq "$runs"); do grep -F "| $step |" "$out/join-$l-$r.txt" | cut -d'|' -f3; done | pct 0.5)"
  done
  echo "$row |"
done
echo
echo "| impairment test (passed/ran) | $hdr |"
echo "|---|---|---|---|"
for t in call_holds_with_loss_and_delay_through_a_turn_relay \
  sender_backs_off_under_a_300_kbit_cap_and_video_keeps_moving \
  media_comes_back_after_an_outage_by_ice_restart \
  a_failed_ice_restart_is_followed_by_a_new_connection; do
  row="| $t"
  for l in "${lines[@]}"; do
    # --nocapture puts a test's figures on its "test … ..." line: a pass is a run test that
    # is not listed under "failures:".
    ran=$(cat "$out"/impairment-"$l"-[0-9]*.txt | grep -c "^test $t \.\.\." || true)
    failed=$(cat "$out"/impairment-"$l"-[0-9]*.txt | grep -c "^    $t\$" || true)
    row+=" | $((ran - failed))/$ran"
  done
  echo "$row |"
done
echo
echo "figures the impairment tests print, per line and run:"
for l in "${lines[@]}"; do
  for r in $(seq "$runs"); do
    grep -oE "(impaired call[^;]*|300 kbit/s cap.*|outage [0-9.]+-[0-9.]+ s: .*answers at .*)" \
      "$out/impairment-$l-$r.txt" | sed "s/^/  $l run $r: /"
  done
done
echo
tail -n 6 "$out/media.txt"
