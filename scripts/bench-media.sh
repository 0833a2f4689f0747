#!/usr/bin/env bash
# Media (issue 6): calls between headless Parley participants (release parley-cli, one process
# each, synthetic camera with a capture timestamp in every frame, Opus tone, decoding all they
# receive), and the same two-party call in Debian's Chromium (headless, fake camera and
# microphone, VP8 at the same size and bitrate, two RTCPeerConnections in one page on loopback),
# in one run on this machine. Per configuration and participant: CPU (process CPU time / wall
# time, % of one core), memory (PSS, MiB), frames received per second per peer, and
# capture-to-decoded latency p50/p95 (Parley: timestamps in the frames).
#
#   scripts/bench-media.sh [RUNS=5] [SECONDS=10] [CONFIGS]
#   CONFIGS: space-separated N:WxH:KBPS[:fixed][:DIR] for Parley (fixed: --no-cpu-adaptation, the
#            full size even when the CPU cannot keep up; DIR: another build's parley-server and
#            parley-cli, e.g. the commit before a change, measured in the same run) and
#            chromium:WxH:KBPS, default
#            "2:640x480:800 2:1280x720:1500 4:640x480:800 chromium:640x480:800 chromium:1280x720:1500"
#   scripts/bench-media.sh 1 2 "2:320x240:300 chromium:320x240:300"   # the CI smoke
#   scripts/bench-media.sh 5 10 "2:640x480:800 2:640x480:800::$HOME/before"  # before/after
# Writes bench/results/media-K.json per run and prints medians over the runs.
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-5}" secs="${2:-10}"
configs="${3:-2:640x480:800 2:1280x720:1500 4:640x480:800 chromium:640x480:800 chromium:1280x720:1500}"
if [[ "$configs" == *chromium* ]]; then
  "$(dirname "$0")/deps.sh" --debs chromium >&2
fi
bench_build -p parley-server -p parley-engine -p parley-bench >&2
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
now() { date +%s.%N; }
# Nearest-rank percentile of numbers on stdin.
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (!NR) { print "nan"; exit } r = int(NR * p + 0.999999); if (r < 1) r = 1; print v[r] }'; }

# The server refuses PARLEY_* variables it does not know (a test run exports some): only ours.
unset_parley=()
for v in $(compgen -e); do [[ $v == PARLEY_* ]] && unset_parley+=(-u "$v"); done

# One Parley call: prints "cpu% pss_mib fps p50 p95" per participant.
parley_call() {
  local n=$1 w=$2 h=$3 kbps=$4 opt=$5 bin=${6:-$bin} work pids=() server_pid base code extra=()
  [ "$opt" = fixed ] && extra+=(--no-cpu-adaptation)
  work="$(mktemp -d)"
  env "${unset_parley[@]}" NO_COLOR=1 RUST_LOG=info PARLEY_LISTEN=127.0.0.1:0 PARLEY_DATA_DIR="$work/data" \
    "$bin/parley-server" > "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q "listening" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
  base="http://$(grep -o 'addr=[0-9.:]*' "$work/server.log" | head -1 | cut -d= -f2)"
  if [ "$base" = "http://" ]; then
    echo "parley-server did not start:" >&2; cat "$work/server.log" >&2; exit 1
  fi
  cli() { local who=$1; shift; exec env "${unset_parley[@]}" XDG_CONFIG_HOME="$work/$who" PARLEY_KEYCHAIN=off PARLEY_SERVER="$base" "$bin/parley-cli" "$@"; }
  for i in $(seq "$n"); do
    echo "user$i-Str0ng-Passphrase" | (cli "u$i" register --username "user$i" --email "user$i@example.org") >/dev/null 2>&1
  done
  code="$( (cli u1 meetings create Bench) )"
  for i in $(seq "$n"); do
    (cli "u$i" join "$code" --listen --loopback-only --camera synthetic --video "${w}x${h}@30" \
      --video-kbps "$kbps" --mic "tone:$((300 + 200 * i))" --record-dir "$work/rec$i" "${extra[@]}") > "$work/join$i.log" 2>&1 &
    pids+=($!)
    sleep 0.3
  done
  sleep 6 # connect and settle (the bitrate ramps up; an overloaded sender steps its size down), as for Chromium
  local t0 t1 before=() after=() pss=()
  t0=$(now)
  for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
  sleep "$secs"
  for p in "${pids[@]}"; do after+=("$(cpu_ticks "$p")"); pss+=("$(pss_kib "$p")"); done
  t1=$(now)
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  local wall lo hi
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  lo=$(awk -v t="$t0" 'BEGIN { printf "%.0f", t * 1000 }'); hi=$(awk -v t="$t1" 'BEGIN { printf "%.0f", t * 1000 }')
  for i in $(seq "$n"); do
    local csv="$work/rec$i/frames.csv" lat frames
    # frames.csv: peer,kind,frame,capture_ms,received_ms,width,height — frames in the window.
    lat="$work/lat$i"
    awk -F, -v lo="$lo" -v hi="$hi" 'NR > 1 && $2 == "camera" && $4 != "" && $5 >= lo && $5 <= hi { print $5 - $4 }' "$csv" > "$lat" 2>/dev/null || true
    frames=$(wc -l < "$lat")
    # What size the frames had (the sender steps its picture down when its CPU cannot keep up).
    echo "  participant $i received $(awk -F, -v lo="$lo" -v hi="$hi" 'NR > 1 && $2 == "camera" && $5 >= lo && $5 <= hi { n[$6 "x" $7]++ } END { for (s in n) printf "%s%s: %d frames", (k++ ? ", " : ""), s, n[s] }' "$csv" 2>/dev/null) (sent ${w}x${h}$( [ "$opt" = fixed ] && echo ", fixed"))" >&2
    printf '%s %s %s %s %s\n' \
      "$(awk -v a="${before[$((i-1))]}" -v b="${after[$((i-1))]}" -v t="$tck" -v w="$wall" 'BEGIN { printf "%.1f", 100 * (b - a) / t / w }')" \
      "$(awk -v k="${pss[$((i-1))]}" 'BEGIN { printf "%.1f", k / 1024 }')" \
      "$(awk -v c="$frames" -v w="$wall" -v n="$n" 'BEGIN { printf "%.1f", c / w / (n - 1) }')" \
      "$(pct 0.5 < "$lat")" "$(pct 0.95 < "$lat")"
  done
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

# PSS of one file's mappings in a process (KiB).
file_pss_kib() {
  awk -v f="$2" '/^[0-9a-f]+-[0-9a-f]+ / { m = (index($0, f) > 0) } m && /^Pss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps" 2>/dev/null || echo 0
}

# Every process of a session.
session_pids() { ps -o pid= -s "$1" 2>/dev/null | tr -d ' '; }

# The same two-party call in Chromium: prints "cpu% pss_mib fps nan nan" per participant
# (the browser's whole process tree divided by two: both participants live in it). Its fake
# camera plays Parley's synthetic picture from a Y4M file (1 s, looped), so both encode the
# same content; the file's mapped pages are left out of its memory.
chromium_call() {
  local w=$1 h=$2 kbps=$3 work port node_pid chrome_pid sid y4m
  work="$(mktemp -d)"
  y4m="$work/synthetic-${w}x${h}.y4m"
  "$bin/parley-bench" y4m --width "$w" --height "$h" --frames 30 "$y4m"
  node bench/chromium/server.js 0 > "$work/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 50); do grep -q listening "$work/node.log" 2>/dev/null && break; sleep 0.1; done
  port=$(awk '/listening/ { print $2 }' "$work/node.log")
  setsid chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-features=WebRtcHideLocalIpsWithMdns \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --use-fake-device-for-media-stream="fps=30" \
    --use-file-for-fake-video-capture="$y4m" --use-fake-ui-for-media-stream --autoplay-policy=no-user-gesture-required \
    "http://127.0.0.1:$port/?w=$w&h=$h&kbps=$kbps" > "$work/chromium.log" 2>&1 &
  chrome_pid=$!
  sid=$chrome_pid
  sleep 6 # start, connect and settle
  local t0 t1 before=0 after=0 pss=0 d0 d1 p
  declare -A start=()
  t0=$(now)
  # Frames the page decoded and when (its clock), at the start and the end of the window.
  stats() { curl -s "127.0.0.1:$port/stats" | grep -o "\"$1\":\[*[0-9.]*" | grep -o '[0-9.]*$' | head -1; }
  d0=$(stats decoded); p0=$(stats t)
  for p in $(session_pids "$sid"); do start[$p]=$(cpu_ticks "$p"); done
  sleep "$secs"
  for p in $(session_pids "$sid"); do
    # Processes that lived through the window (their whole CPU time if they started in it).
    after=$((after + $(cpu_ticks "$p"))); before=$((before + ${start[$p]:-0}))
    pss=$((pss + $(pss_kib "$p") - $(file_pss_kib "$p" "$y4m")))
  done
  t1=$(now)
  d1=$(stats decoded); p1=$(stats t)
  curl -s "127.0.0.1:$port/stats" > "$work/stats.json"
  kill -TERM -- "-$sid" 2>/dev/null || true
  kill "$node_pid" 2>/dev/null || true
  wait "$chrome_pid" "$node_pid" 2>/dev/null || true
  local wall
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  # libwebrtc may lower the resolution when it thinks the CPU is overused: say what it sent.
  echo "  chromium sent $(grep -o '"resolution":"[0-9x]*"' "$work/stats.json" | cut -d'"' -f4) at $(grep -o '"sendKbps":[0-9]*' "$work/stats.json" | cut -d: -f2) kbit/s (asked ${w}x${h})" >&2
  if ! grep -q '"codec":"video/VP8"' "$work/stats.json"; then
    echo "chromium: no VP8 call: $(cat "$work/stats.json")" >&2
    d1=$d0 # counts as no frames
  fi
  for _ in 1 2; do
    printf '%s %s %s nan nan\n' \
      "$(awk -v a="$before" -v b="$after" -v t="$tck" -v w="$wall" 'BEGIN { printf "%.1f", 100 * (b - a) / t / w / 2 }')" \
      "$(awk -v k="$pss" 'BEGIN { printf "%.1f", k / 1024 / 2 }')" \
      "$(awk -v a="${d0:-0}" -v b="${d1:-0}" -v s="${p0:-0}" -v e="${p1:-0}" 'BEGIN { printf "%.1f", (e > s) ? (b - a) * 1000 / (e - s) : 0 }')"
  done
  rm -rf "$work"
}

echo "media benchmark: $runs runs, ${secs}s measured each; configs: $configs"
all="$(mktemp)"
for r in $(seq "$runs"); do
  json="bench/results/media-$r.json"
  echo "[" > "$json"
  first=1
  for c in $configs; do
    IFS=: read -r who size kbps opt dir <<< "$c"
    w=${size%x*} h=${size#*x}
    if [ "$who" = chromium ]; then
      out=$(chromium_call "$w" "$h" "$kbps"); label="chromium 2 ${size} ${kbps}k"
    else
      out=$(parley_call "$who" "$w" "$h" "$kbps" "${opt:-}" "${dir:-}"); label="parley $who ${size} ${kbps}k${opt:+ $opt}${dir:+ ($(basename "$dir"))}"
    fi
    i=0
    while read -r cpu pss fps p50 p95; do
      i=$((i + 1))
      printf '  run %d  %-28s participant %d: CPU %5.1f %%  PSS %6.1f MiB  %4.1f fps/peer  latency p50 %s ms p95 %s ms\n' \
        "$r" "$label" "$i" "$cpu" "$pss" "$fps" "$p50" "$p95"
      echo "$label|$cpu|$pss|$fps|$p50|$p95" >> "$all"
      [ $first -eq 1 ] || echo "," >> "$json"
      first=0
      printf '{"config":"%s","participant":%d,"cpu_percent":%s,"pss_mib":%s,"fps_per_peer":%s,"latency_p50_ms":%s,"latency_p95_ms":%s}\n' \
        "$label" "$i" "$cpu" "$pss" "$fps" "${p50/nan/null}" "${p95/nan/null}" >> "$json"
    done <<< "$out"
  done
  echo "]" >> "$json"
done

echo
echo "| configuration (medians over $runs runs × participants) | CPU, % of a core | PSS, MiB | fps per peer | latency p50, ms | latency p95, ms |"
echo "|---|---|---|---|---|---|"
cut -d'|' -f1 "$all" | awk '!seen[$0]++' | while read -r label; do
  med() { grep -F "$label|" "$all" | cut -d'|' -f"$1" | grep -v nan | pct 0.5; }
  printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(med 2)" "$(med 3)" "$(med 4)" "$(med 5)" "$(med 6)"
done
# The harness must not rot: every participant must have received video.
if awk -F'|' '$4 + 0 <= 0 { bad = 1 } END { exit !bad }' "$all"; then
  echo "FAILED: a participant received no video" >&2
  rm -f "$all"
  exit 1
fi
rm -f "$all"
