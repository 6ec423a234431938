#!/usr/bin/env bash
# Stops the throwaway cluster started by scripts/pg-start.sh and deletes its temp dir. Idempotent.
#   scripts/pg-stop.sh [STATE_DIR]      (default STATE_DIR: .cache/postgres)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${1:-$root/.cache/postgres}"
[ -f "$state/pgroot" ] || exit 0
PGROOT=$(cat "$state/pgroot")
PGBIN=$(cat "$state/pgbin" 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ -d "$PGROOT/data" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null 2>&1 || true
  else
    "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
fi
case "$PGROOT" in */pgtest.*) rm -rf "$PGROOT" ;; esac
rm -f "$state/pgroot" "$state/connection" "$state/env" "$state/pgbin"
rmdir "$state" 2>/dev/null || true
