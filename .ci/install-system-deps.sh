#!/usr/bin/env bash
# System packages CI needs (Debian): chromium for the real-browser tests. Idempotent and quiet.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
echo "system packages ready: $(chromium --version 2>/dev/null || echo 'chromium missing')"
