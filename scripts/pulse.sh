#!/usr/bin/env bash
# Runs a command with a private, user-space PulseAudio standing in for sound hardware
# (../shared/DESIGN.md §7). ALSA's `default` reaches it through libasound2-plugins, so cpal
# uses it like a real sound card. Two participants' worth of devices:
#   speakers  spk_a, spk_b              (null sinks; record them via spk_X.monitor)
#   mic feeds micfeed_a, micfeed_b      (null sinks: play into these ...)
#   mics      virtmic_a, virtmic_b      (... and they come out of these sources)
# A process picks its devices with PULSE_SINK / PULSE_SOURCE. Usage: scripts/pulse.sh CMD...
set -euo pipefail
scratch="$(mktemp -d)"
mkdir -m 700 -p "$scratch/run" "$scratch/state"
cat > "$scratch/parley.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=spk_a rate=48000
load-module module-null-sink sink_name=spk_b rate=48000
load-module module-null-sink sink_name=micfeed_a rate=48000
load-module module-null-sink sink_name=micfeed_b rate=48000
load-module module-remap-source source_name=virtmic_a master=micfeed_a.monitor
load-module module-remap-source source_name=virtmic_b master=micfeed_b.monitor
set-default-sink spk_a
set-default-source virtmic_a
PA
export XDG_RUNTIME_DIR="$scratch/run" PULSE_STATE_PATH="$scratch/state"
HOME="$scratch" pulseaudio -n -F "$scratch/parley.pa" --exit-idle-time=-1 --daemonize=no \
  --use-pid-file=no --log-target=file:"$scratch/pulse.log" &
pulse_pid=$!
cleanup() { kill "$pulse_pid" 2>/dev/null; wait "$pulse_pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl info >/dev/null || { echo "PulseAudio did not start:" >&2; cat "$scratch/pulse.log" >&2; exit 1; }
PARLEY_TEST_PULSE=1 "$@"
