#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for tests and benchmarks (see ../shared/stack-notes.md): a fresh data
# directory in a temp dir, a free port on 127.0.0.1, a login role and a database with a random password.
#
#   scripts/pg-start.sh [STATE_DIR]      (default STATE_DIR: .cache/postgres)
#
# Writes into STATE_DIR:
#   connection  the Npgsql connection string (also printed as the last line of stdout)
#   pgroot      the cluster's temp dir (data, socket, server.log), used by scripts/pg-stop.sh
#   pgbin       the PostgreSQL bin directory in use (initdb, pg_ctl, pg_dump, psql)
#   env         `export IMIKELGO_POSTGRES=...` for `source`
# Idempotent: when STATE_DIR already names a running cluster, prints its connection string and starts nothing.
# Test speed: fsync, synchronous_commit and full_page_writes are off. Never use this cluster for durability tests.
# IMIKELGO_PG_DURABLE=1 keeps the durable defaults (for benchmarks that claim durability).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${1:-$root/.cache/postgres}"
mkdir -p "$state"
state="$(cd "$state" && pwd)"

"$root/scripts/setup-postgres.sh"

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Reuse a running cluster recorded in STATE_DIR.
if [ -f "$state/pgroot" ] && [ -f "$state/connection" ]; then
  old=$(cat "$state/pgroot")
  if [ -d "$old/data" ] && as_pg "$PGBIN/pg_ctl" -D "$old/data" status >/dev/null 2>&1; then
    cat "$state/connection"
    exit 0
  fi
  [ -n "$old" ] && [ -d "$old" ] && case "$old" in /tmp/pgtest.*|"${TMPDIR:-/tmp}"/pgtest.*) rm -rf "$old" ;; esac
  rm -f "$state/pgroot" "$state/connection" "$state/env"
fi

PGROOT=$(mktemp -d "${TMPDIR:-/tmp}/pgtest.XXXXXX")
mkdir -p "$PGROOT/data" "$PGROOT/sock"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres:postgres "$PGROOT"
fi
chmod 700 "$PGROOT"
as_pg "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null

speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "${IMIKELGO_PG_DURABLE:-0}" = "1" ] && speed=""

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=0
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  if as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $PGROOT/sock -c max_connections=300 $speed" start >/dev/null; then
    started=1; break
  fi
done
if [ "$started" -ne 1 ]; then
  echo "pg-start: the cluster did not start; see $PGROOT/server.log:" >&2
  tail -20 "$PGROOT/server.log" >&2 || true
  exit 1
fi

password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
as_pg "$PGBIN/psql" -q -h "$PGROOT/sock" -p "$port" -U postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE imikelgo LOGIN PASSWORD '$password' SUPERUSER" \
  -c "CREATE DATABASE imikelgo OWNER imikelgo" >/dev/null

conn="Host=127.0.0.1;Port=$port;Username=imikelgo;Password=$password;Database=imikelgo;Maximum Pool Size=100"
echo "$PGROOT" >"$state/pgroot"
echo "$PGBIN" >"$state/pgbin"
echo "$conn" >"$state/connection"
printf 'export IMIKELGO_POSTGRES=%q\n' "$conn" >"$state/env"
chmod 600 "$state/connection" "$state/env"
echo "pg-start: PostgreSQL on 127.0.0.1:$port (data in $PGROOT)" >&2
echo "$conn"
