#!/usr/bin/env bash
# System packages CI needs (Debian), installed only when missing: idempotent, quiet, and a no-op
# (well under a second) on a machine that has them.
#   chromium             the real-browser tests (tests/test_browser_*.py drive /usr/bin/chromium)
#   fonts-liberation     Latin fonts for chromium (a recommended package, not pulled in without recommends)
#   fonts-wqy-microhei   CJK glyphs, so the glossary's Chinese names render in screenshots
#   nodejs, npm          `course book build` fetches MathJax 3 with `npm pack` (only if npm is missing)
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
for pkg in fonts-liberation fonts-wqy-microhei; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
echo "system packages ready: $(chromium --version 2>/dev/null | head -n 1 || echo 'chromium MISSING'); npm $(npm --version 2>/dev/null || echo MISSING)"
