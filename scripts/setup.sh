#!/usr/bin/env bash
# Installs and builds everything the tests and the demo need. Idempotent and cached:
# a second run on the same machine does nothing but checks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache"
mkdir -p "$cache"

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Encrypted SQLite (SQLite3 Multiple Ciphers), built from the npm registry package into .cache/.
if [ -x "$root/scripts/setup-sqlite.sh" ]; then
  "$root/scripts/setup-sqlite.sh"
fi
