"""The browser tests' one harness: Debian's Chromium driven by Playwright (its own
browser download is never used), and where screenshots go. Tests take the `chromium`
fixture (tests/conftest.py); `need` skips on a developer's machine and fails in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# Headless, and no background connections: this machine's network is closed.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok: bool, why: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"CI needs this: {why}")
        pytest.skip(why)


def launch_chromium():
    """Debian's Chromium under Playwright, closed when the generator ends (the `chromium`
    fixture in tests/conftest.py)."""
    need(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is not installed (scripts/setup.sh installs Debian's chromium)")
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
