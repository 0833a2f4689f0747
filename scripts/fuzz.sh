#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of what Parley parses (fuzz/fuzz_targets).
#   scripts/fuzz.sh TARGET [SECONDS=60] [-- libFuzzer options]   one target, that long
#     (the README's figures: scripts/fuzz.sh TARGET 1200 -- -runs=10000000)
#   scripts/fuzz.sh all [SECONDS=30]                              every target in turn
#   scripts/fuzz.sh T1,T2,… [SECONDS] [-- options]                these, side by side: one
#     build for the lot (each call builds first, so a chain of calls rebuilds whenever the
#     code changed in between), one process per target (give each a core)
#   scripts/fuzz.sh list
#   scripts/fuzz.sh build                                         only build them (the test
#     run builds in the background while other steps run, then smokes each)
# Starts from the checked-in seeds (fuzz/seeds/TARGET) and keeps what it learns in
# fuzz/corpus/TARGET (not committed). A crash leaves its input in fuzz/artifacts/TARGET and
# fails the run: reproduce it with `scripts/fuzz.sh TARGET 0 fuzz/artifacts/TARGET/crash-…`,
# fix it, and add the input to the seeds with a regression test.
# Prints each target's executions, the figure the README's testing section records.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${PARLEY_FUZZ_TARGET_DIR:-$HOME/.cache/parley-fuzz-target}"
# SQLite is linked into the server and sqlx's driver alike: AddressSanitizer's one-definition
# check would stop every target at start.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# libFuzzer's instrumentation needs unstable rustc flags: the nightly toolchain when there
# is one, else the stable compiler with its unstable features opened (RUSTC_BOOTSTRAP).
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
# PARLEY_FUZZ_DEV=1: an unoptimised build (cargo fuzz --dev), several times quicker to
# compile and slower to run: the test run's smoke. Long runs use the optimised default.
profile=()
[ "${PARLEY_FUZZ_DEV:-0}" = 1 ] && profile=(--dev)
targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^parley-fuzz$'; }
what="${1:-list}"
if [ "$what" = list ]; then targets; exit 0; fi
secs="${2:-60}"
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
# Debug assertions and overflow checks on: an overflow is a finding too.
"${fuzz[@]}" build --fuzz-dir fuzz --debug-assertions "${profile[@]}" >&2
[ "$what" = build ] && exit 0
run_one() {
  local t="$1"
  shift
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  local log
  log="$(mktemp)"
  local seeds=() start=$SECONDS
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  if ! "${fuzz[@]}" run --fuzz-dir fuzz --debug-assertions "${profile[@]}" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536 \
      -print_final_stats=1 "$@" > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t)" >&2
    rm -f "$log"
    return 1
  fi
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz: $t ok, ${execs:-?} executions in $((SECONDS - start)) s"
  rm -f "$log"
}
if [ "$what" = all ]; then
  failed=0
  for t in $(targets); do run_one "$t" || failed=1; done
  exit "$failed"
fi
if [[ $what == *,* ]]; then
  IFS=, read -ra chosen <<<"$what"
  pids=()
  for t in "${chosen[@]}"; do
    targets | grep -qx "$t" || { echo "fuzz: no target $t (scripts/fuzz.sh list)" >&2; exit 2; }
    run_one "$t" "$@" &
    pids+=($!)
  done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  exit "$failed"
fi
run_one "$what" "$@"
