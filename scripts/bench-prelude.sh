# Sourced by the benchmark scripts: strict mode, the repository root, the shared build cache,
# the system packages, and `bench_runs` (repeats a parley-bench subcommand, a JSON per run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/parley-target}"
scripts/deps.sh >&2
mkdir -p bench/results

# bench_runs RUNS SUBCOMMAND [options…]: writes bench/results/SUBCOMMAND-K.json for run K.
bench_runs() {
  local runs="$1" cmd="$2"
  shift 2
  for i in $(seq "$runs"); do
    echo "== run $i of $runs"
    "$CARGO_TARGET_DIR/release/parley-bench" "$cmd" --json "bench/results/$cmd-$i.json" "$@"
  done
}
