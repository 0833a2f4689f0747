#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster on 127.0.0.1 for the test suite.
#   source scripts/postgres.sh; pg_start   -> exports PARLEY_TEST_POSTGRES_URL
#   pg_stop                                -> stops it and deletes its files
# The cluster lives in a temp dir, listens on loopback only, and trusts local connections.

pg_bin() {
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$v" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
  echo "/usr/lib/postgresql/$v/bin"
}

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local bin port
  bin=$(pg_bin) || return 1
  PG_TEST_DIR=$(mktemp -d /tmp/parley-pg.XXXXXX)
  [ "$(id -u)" -ne 0 ] || chown postgres "$PG_TEST_DIR"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pg_as_owner "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  pg_as_owner "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $PG_TEST_DIR -c fsync=off -c max_connections=400" start >/dev/null \
    || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
  export PG_TEST_DIR PG_TEST_BIN="$bin"
  export PARLEY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "== PostgreSQL $(basename "$(dirname "$bin")") on 127.0.0.1:$port"
}

pg_stop() {
  [ -n "${PG_TEST_DIR:-}" ] || return 0
  pg_as_owner "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TEST_DIR"
  unset PG_TEST_DIR PARLEY_TEST_POSTGRES_URL
}
