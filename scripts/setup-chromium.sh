#!/usr/bin/env bash
# Installs Debian's Chromium for the teacher app's browser tests (tests/iMikelGo.App.Tests).
# Idempotent: does nothing when /usr/bin/chromium already exists. Playwright never downloads a browser here.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "setup-chromium: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup-chromium: need root or sudo to install chromium (apt)" >&2; exit 1
  fi
fi
echo "setup-chromium: installing chromium (apt, about a minute)"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
