#!/usr/bin/env bash
# Print the path of a headless-capable Chromium for the web UI's browser test, installing Debian's
# package first when it is missing and we are root with apt-get (Playwright never downloads one).
set -euo pipefail
found=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$found" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
  found=$(command -v chromium || true)
fi
if [ -z "$found" ]; then
  echo "no Chromium: install Debian's package (apt-get install -y chromium) or set CLOACINA_CHROMIUM" >&2
  exit 1
fi
echo "$found"
