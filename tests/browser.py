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


def failed_requests(page) -> list[str]:
    """From now on, every request of `page` that fails or is answered 4xx/5xx, as
    'STATUS URL' lines: what a failure message names when JupyterLab shows an error."""
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"failed ({request.failure}) {request.url}"))
    page.on("response", lambda response: response.status >= 400 and failed.append(f"{response.status} {response.url}"))
    return failed


def notebook_open(page, path: str, url: str = "", first_cell: str = "", launch_s: float = 300, lab_s: float = 120):
    """Wait until the page is JupyterLab with notebook `path` open: at a URL matching the
    glob `url` (default: any server's lab/tree/`path`) within `launch_s`, then within
    `lab_s` its theme loaded, the notebook's tab current (its first cell containing
    `first_cell`, when given) and the kernel idle. Each wait ends as soon as JupyterLab
    gets there. An error dialog JupyterLab shows instead (such as "Error Loading Theme",
    when a stylesheet request fails) fails at once, with its text and the page's failed
    requests. Returns the notebook panel."""
    from playwright.sync_api import expect

    failed = failed_requests(page)
    page.wait_for_url(url or f"**/user/**/lab/tree/{path}**", timeout=launch_s * 1000)
    ms = lab_s * 1000
    # The theme manager marks <body> once the theme's stylesheet has loaded; it opens a dialog if that fails.
    page.wait_for_selector("body[data-jp-theme-name], .jp-Dialog", state="attached", timeout=ms)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        raise AssertionError(f"JupyterLab shows {dialog.first.inner_text()!r}; failed requests: {failed or 'none'}")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook).to_have_count(1, timeout=ms)
    expect(page.locator(".jp-mod-current .lm-TabBar-tabLabel")).to_have_text(path.rsplit("/", 1)[-1], timeout=ms)
    if first_cell:
        expect(notebook.locator(".jp-Cell").first).to_contain_text(first_cell, timeout=ms)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=ms)  # its kernel runs
    return notebook
