# Sourced by the benchmark scripts: strict mode, the repository root, the shared build cache,
# the system packages, and `bench_runs` (repeats a parley-bench subcommand, a JSON per run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
scripts/deps.sh >&2
mkdir -p bench/results
# The profile the harnesses run on: release for figures; the test run's smoke sets
# PARLEY_BENCH_PROFILE=dev to reuse the debug build its tests made (figures meaningless).
bench_profile="${PARLEY_BENCH_PROFILE:-release}"
if [ "$bench_profile" = dev ]; then
  bin="$CARGO_TARGET_DIR/debug"
  echo "== benchmark harness on the debug build: a smoke, not a measurement" >&2
else
  bin="$CARGO_TARGET_DIR/$bench_profile"
fi
# bench_build [cargo build options…]: the binaries, in that profile. The debug build is the
# workspace's own (one feature set, as the tests built it), whatever packages are named.
bench_build() {
  if [ "$bench_profile" = dev ]; then
    cargo build --quiet --locked --workspace --bins
  else
    cargo build --profile "$bench_profile" --locked "$@"
  fi
}

# bench_runs RUNS SUBCOMMAND [options…]: writes bench/results/SUBCOMMAND-K.json for run K.
bench_runs() {
  local runs="$1" cmd="$2"
  shift 2
  for i in $(seq "$runs"); do
    echo "== run $i of $runs"
    "$bin/parley-bench" "$cmd" --json "bench/results/$cmd-$i.json" "$@"
  done
}
