from __future__ import annotations

from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture
def chromium():
    """A headless Debian Chromium (tests/browser.py)."""
    from tests.browser import launch_chromium

    yield from launch_chromium()
