"""Hostile repositories and servers made by the tests, each attack run for real.

Builds run on the real engine (marker `docker`), under a session prefix whose images
and containers are removed at the end (tests/integration/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from dsbuild.builder.errors import DsbuildError
from dsbuild.builder.service import BuildRequest, Built, build
from tests.integration import conftest as _integration

engine, prefix = _integration.engine, _integration.prefix  # the integration tests' fixtures, shared


def write_repo(folder: Path, files: dict[str, str], executable: tuple[str, ...] = ("postBuild",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        if name in executable:
            path.chmod(0o755)
    return folder


def run_build(request: BuildRequest, docker) -> tuple[Built | None, list, DsbuildError | None]:
    """All events of a build, its result, and the error it ended with (if any)."""
    events: list = []
    try:
        for event in build(request, docker):
            events.append(event)
    except DsbuildError as err:
        return None, events, err
    return events[-1], events, None


def log_text(events: list) -> str:
    return "\n".join(getattr(e, "text", "") or getattr(e, "message", "") for e in events)


def image_exists(docker, ref: str) -> bool:
    return docker.inspect_image(ref) is not None


def processes_matching(needle: str) -> list[str]:
    done = subprocess.run(["pgrep", "-af", needle], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if "pgrep" not in line]


def reader_containers(docker) -> list[str]:
    done = subprocess.run([docker.cli, "ps", "-aq", "--filter", "label=io.dsbuild.reader"], capture_output=True, text=True)
    return done.stdout.split()


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """dsbuild's cache (mirrors, contexts, lock records) in a folder of the test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(folder))
    return folder


def pytest_collection_modifyitems(items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.security)
