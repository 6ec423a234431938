#!/usr/bin/env bash
# Installs PostgreSQL server and client binaries from Debian's packages when none are present. Idempotent:
# does nothing when /usr/lib/postgresql/*/bin exists. Works as root, or as a user with sudo.
# Does not start anything: scripts/pg-start.sh starts a throwaway cluster (see docs/stores.md).
set -euo pipefail

if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup-postgres: PostgreSQL is not installed and this user cannot run apt-get (not root, no sudo)" >&2
    exit 1
  fi
fi

echo "setup-postgres: installing postgresql-15 postgresql-client-15 (apt)" >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 postgresql-client-15 >/dev/null

if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  echo "setup-postgres: apt-get finished but no /usr/lib/postgresql/*/bin exists" >&2
  exit 1
fi
