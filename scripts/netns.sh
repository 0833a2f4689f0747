#!/usr/bin/env bash
# Runs a command inside a throwaway network namespace, as browsers need for tests: they leave
# loopback out of ICE and gather on the machine's real interfaces, so the namespace gets a
# veth pair with private addresses (10.77.0.1 and 10.77.0.2, both ends inside it) and a
# default route to its own peer (Firefox gathers nothing without one). No media can leave
# it; the command and everything it starts live inside. Needs root (ip netns).
#   scripts/netns.sh CMD...      # NETNS_ADDR is 10.77.0.1 inside
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: scripts/netns.sh CMD..." >&2; exit 2; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
ns="parley-t$$"
a="pv$$a" b="pv$$b"
cleanup() {
  # Whatever the command left running in the namespace (a browser of a failed test…) ends
  # with it: those are all ours.
  local left
  left=$($SUDO ip netns pids "$ns" 2>/dev/null || true)
  [ -z "$left" ] || { $SUDO kill $left 2>/dev/null || true; sleep 1; $SUDO kill -9 $left 2>/dev/null || true; }
  $SUDO ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
$SUDO ip netns add "$ns"
$SUDO ip -n "$ns" link set lo up
$SUDO ip -n "$ns" link add "$a" type veth peer name "$b"
$SUDO ip -n "$ns" addr add 10.77.0.1/24 dev "$a"
$SUDO ip -n "$ns" addr add 10.77.0.2/24 dev "$b"
$SUDO ip -n "$ns" link set "$a" up
$SUDO ip -n "$ns" link set "$b" up
$SUDO ip -n "$ns" route add default via 10.77.0.2 dev "$a" 2>/dev/null || true
# As the calling user, with its environment (HOME, PATH, CARGO_TARGET_DIR…).
status=0
$SUDO ip netns exec "$ns" env NETNS_ADDR=10.77.0.1 "$@" || status=$?
exit "$status"
