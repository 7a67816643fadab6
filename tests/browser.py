"""What both real-browser tests share: Debian's chromium, its flags, and where screenshots go."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright never downloads a browser here
# No background networking: this machine's closed network would refuse those connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = ROOT / "tests" / "_artifacts" / "screenshots"


def require_chromium() -> None:
    """Skip without Debian chromium, except in CI (CI=true), where its absence is a failure."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} not found: apt-get install chromium (or run .ci/install-system-deps.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
