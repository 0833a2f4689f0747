#!/usr/bin/env bash
# Browser join time (issue 17): a guest opens the invite link in headless Chromium, chooses
# "Join in this browser", types a name and joins; measured until the first frame of the
# host's video is presented in the page. The host is parley-cli with the synthetic camera.
# Runs inside a network namespace (scripts/browsers.sh). Prints p50/p95 per run and writes
# bench/results/browser-join-K.json.
#   scripts/bench-browser-join.sh [RUNS=3] [JOINS=10] [chromium|firefox]
#   scripts/bench-browser-join.sh 1 2      # the CI smoke
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NETNS_ADDR:-}" ]; then exec scripts/browsers.sh "$0" "$@"; fi
runs="${1:-3}" joins="${2:-10}" browser="${3:-chromium}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
# (Not through bench-prelude.sh: this runs again inside the namespace.) The test run's smoke
# sets PARLEY_BENCH_PROFILE=dev: the debug build its tests made, figures meaningless.
if [ "${PARLEY_BENCH_PROFILE:-release}" = dev ]; then
  cargo build --quiet --locked --workspace --bins >&2
  bin="$CARGO_TARGET_DIR/debug"
else
  cargo build --quiet --release --locked -p parley-server -p parley-engine --bin parley-server --bin parley-cli >&2
  bin="$CARGO_TARGET_DIR/release"
fi
mkdir -p bench/results
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=18190  # the namespace is this script's own: nothing else listens in it
# The server reads every PARLEY_* variable as its settings: none of the test run's.
unset_parley=()
for v in $(compgen -e); do [[ $v == PARLEY_* ]] && unset_parley+=(-u "$v"); done
env "${unset_parley[@]}" PARLEY_LISTEN="127.0.0.1:$port" PARLEY_DATA_DIR="$work/data" PARLEY_LIMITS__GUEST_ENTRIES_PER_IP=100000 \
  PARLEY_LIMITS__GUEST_ENTRIES_PER_MEETING=100000 "$bin/parley-server" > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "127.0.0.1:$port/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "127.0.0.1:$port/api/health" >/dev/null || { echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
cli() { HOME="$work/host" XDG_CONFIG_HOME="$work/host/.config" PARLEY_KEYCHAIN=off PARLEY_SERVER="http://127.0.0.1:$port" "$bin/parley-cli" "$@"; }
echo "host-Str0ng-Passphrase" | cli register --username host --email host@example.org >/dev/null
code=$(cli meetings create "Browser join" --allow-guests | tr -d '[:space:]')
cli join "$code" --listen --camera synthetic --video 640x480@30 --mic none > "$work/host.log" 2>&1 &
pids+=($!)
for r in $(seq "$runs"); do
  {
    for i in $(seq "$joins"); do
      echo "{\"op\":\"time_join\",\"url\":\"http://127.0.0.1:$port/j/$code\",\"name\":\"Guest $i\"}"
    done
    echo '{"op":"close"}'
  } | node test-support/browser/driver.mjs "$browser" > "$work/run-$r.jsonl"
  # The first line is the driver's "ready"; each other line one join's milliseconds.
  tail -n +2 "$work/run-$r.jsonl" | python3 -c '
import json, sys
ms = []
for line in sys.stdin:
    a = json.loads(line)
    if not a["ok"]:
        sys.exit("a join failed: " + a["error"])
    ms.append(a["value"])
ms.sort()
pct = lambda q: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]
out = {"browser": sys.argv[1], "joins": len(ms), "p50_ms": round(pct(0.5), 1), "p95_ms": round(pct(0.95), 1), "all_ms": [round(x, 1) for x in ms]}
json.dump(out, open(sys.argv[2], "w"))
print("  run %s: %s join, link opened -> first remote frame: p50 %s ms, p95 %s ms over %d joins" % (sys.argv[3], sys.argv[1], out["p50_ms"], out["p95_ms"], len(ms)))
' "$browser" "bench/results/browser-join-$r.json" "$r"
done
