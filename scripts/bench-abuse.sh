#!/usr/bin/env bash
# The server's defences under load (issue 14): sockets that connect and never join, participants
# that stop reading, and honest participants in meetings of 4 joining and chatting, against the
# default limits, each group from its own loopback addresses; with `--guests N`, N guests each
# from an address of its own flooding the honest meetings' waiting rooms and entry budgets
# (issue 33). Fails when an honest join or chat delivery is lost, the server's memory passes
# the bound, or (with guests) the guests hold more waiting-room seats or stored rows than the
# limits allow. Writes bench/results/abuse-K.json.
#   scripts/bench-abuse.sh [RUNS=5] [IDLE=1000] [SLOW=100] [HONEST=100] [extra options…]
#   scripts/bench-abuse.sh 5 1000 100 100 --guests 500   # the guest flood (BENCHMARKS.md)
#   scripts/bench-abuse.sh 1 100 8 8 --secs 5 --guests 20   # the CI smoke
source "$(dirname "$0")/bench-prelude.sh"
runs="${1:-5}"
idle="${2:-1000}"
slow="${3:-100}"
honest="${4:-100}"
shift $(( $# > 4 ? 4 : $# ))
bench_build -p parley-server -p parley-bench >&2
bench_runs "$runs" abuse --idle "$idle" --slow "$slow" --honest "$honest" "$@"
