#!/usr/bin/env bash
# Measures a call between headless participants on this machine: CPU per participant, decoded
# frames per second, and capture-to-decode latency (from the timestamps the synthetic camera
# stamps into every frame). Release build, loopback only.
#
#   scripts/bench-call.sh [PARTICIPANTS=2] [SECONDS=20] [RUNS=3]
#
# Each participant: parley-cli join --camera synthetic (640x480, 30 fps, 800 kbit/s VP8)
# --mic tone:HZ (Opus) --record-dir (decodes everything it receives).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2}" secs="${2:-20}" runs="${3:-3}"
scripts/deps.sh >&2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
cargo build --quiet --release --locked -p parley-server -p parley-engine >&2
bin="$CARGO_TARGET_DIR/release"
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

one_run() {
  local work pids=() server_pid base code
  work="$(mktemp -d)"
  NO_COLOR=1 RUST_LOG=info PARLEY_LISTEN=127.0.0.1:0 PARLEY_DATA_DIR="$work/data" \
    "$bin/parley-server" > "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q "listening" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
  base="http://$(grep -o 'addr=[0-9.:]*' "$work/server.log" | head -1 | cut -d= -f2)"
  cli() { local who=$1; shift; XDG_CONFIG_HOME="$work/$who" PARLEY_KEYCHAIN=off PARLEY_SERVER="$base" exec "$bin/parley-cli" "$@"; }
  for i in $(seq "$n"); do
    echo "user$i-Str0ng-Passphrase" | (cli "u$i" register --username "user$i" --email "user$i@example.org") >/dev/null 2>&1
  done
  code="$( (cli u1 meetings create Bench) )"
  for i in $(seq "$n"); do
    (cli "u$i" join "$code" --listen --loopback-only --camera synthetic \
      --mic "tone:$((300 + 200 * i))" --record-dir "$work/rec$i") > "$work/join$i.log" 2>&1 &
    pids+=($!)
    sleep 0.3
  done
  sleep 5 # connect and settle
  local t0 before=() after=()
  t0=$(date +%s.%N)
  for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
  sleep "$secs"
  for p in "${pids[@]}"; do after+=("$(cpu_ticks "$p")"); done
  local t1 wall
  t1=$(date +%s.%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  for i in $(seq "$n"); do
    local cpu fps lat
    cpu=$(awk -v a="${before[$((i-1))]}" -v b="${after[$((i-1))]}" -v t="$tck" -v w="$wall" \
      'BEGIN { print 100 * (b - a) / t / w }')
    # frames.csv: peer,kind,frame,capture_ms,received_ms,width,height
    local csv="$work/rec$i/frames.csv" frames
    # Only frames that arrived inside the measured window.
    local win="-v lo=$(awk -v t="$t0" 'BEGIN { printf "%.0f", t * 1000 }') -v hi=$(awk -v t="$t1" 'BEGIN { printf "%.0f", t * 1000 }')"
    # shellcheck disable=SC2086
    frames=$(awk -F, $win 'NR > 1 && $3 != "" && $5 >= lo && $5 <= hi' "$csv" | wc -l)
    fps=$(awk -v c="$frames" -v w="$wall" -v n="$n" 'BEGIN { print c / w / (n - 1) }')
    # shellcheck disable=SC2086
    lat=$(awk -F, $win 'NR > 1 && $3 != "" && $5 >= lo && $5 <= hi { print $5 - $4 }' "$csv" | sort -n |
      awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] + 0 }')
    printf '%s %s %s\n' "$cpu" "$fps" "$lat"
  done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

echo "call benchmark: $n participants, ${secs}s measured, $runs runs (release, loopback, 640x480@30)"
all="$(mktemp)"
for r in $(seq "$runs"); do
  one_run | tee -a "$all" | awk -v r="$r" '{ printf "  run %d participant %d: CPU %.1f %% of one core, %.1f fps received per peer, latency median %d ms\n", r, NR, $1, $2, $3 }'
done
sort -n -k1 "$all" | awk '{ cpu[NR] = $1 } END { printf "median CPU per participant: %.1f %% of one core\n", cpu[int((NR + 1) / 2)] }'
sort -n -k3 "$all" | awk '{ l[NR] = $3 } END { printf "median capture-to-decode latency: %d ms\n", l[int((NR + 1) / 2)] }'
rm -f "$all"
