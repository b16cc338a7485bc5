#!/usr/bin/env bash
# Install (if needed) and start a throw-away PostgreSQL server on loopback for the test suite.
# Prints the connection URL on stdout; everything else goes to stderr.
# Runs as root (CI) and drops to the postgres user for the server, which refuses to run as root.
set -euo pipefail
PORT="${CLOACINA_PG_PORT:-55432}"
DATA="${CLOACINA_PG_DATA:-/tmp/cloacina-pg-data}"
log() { echo "[postgres.sh] $*" >&2; }

bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir="$d"; done
if [ -z "$bindir" ]; then
  log "PostgreSQL server not found; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir="$d"; done
fi
[ -n "$bindir" ] || { log "PostgreSQL server still missing after apt-get install"; exit 1; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! as_pg "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -s "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"; mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres: "$DATA"
    as_pg "$bindir/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
  fi
  as_pg "$bindir/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >&2
fi
# local socket connections are trusted; TCP ones need the password, so bad credentials can be tested
psql_pg() { as_pg "$bindir/psql" -h /tmp -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname='cloacina'" | grep -q 1 \
  || psql_pg -c "CREATE ROLE cloacina LOGIN SUPERUSER PASSWORD 'cloacina'" >&2
psql_pg -c "SELECT 1 FROM pg_database WHERE datname='cloacina_test'" | grep -q 1 \
  || psql_pg -c "CREATE DATABASE cloacina_test OWNER cloacina" >&2
echo "postgresql://cloacina:cloacina@127.0.0.1:$PORT/cloacina_test"
