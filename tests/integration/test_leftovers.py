"""The integration session's clean-up of what killed sessions left (tests/leftovers.py),
on the real engine: tags of an existing image stand in for a session's images."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dsbuild.builder.plan import DEFAULT_BASE_IMAGE
from tests.leftovers import remove_leftovers, session_lock

pytestmark = pytest.mark.docker


def tag(engine, ref: str) -> str:
    subprocess.run([engine.cli, "tag", DEFAULT_BASE_IMAGE, ref], check=True)
    return ref


def test_images_of_a_killed_session_go_and_a_running_sessions_stay(engine, prefix, tmp_path):
    runs = tmp_path / "runs"
    killed, running, unknown = (f"dsbuild-test-{uuid.uuid4().hex[:8]}" for _ in range(3))
    # A session that was killed: it held its lock file and died without its teardown.
    child = subprocess.run([sys.executable, "-c", f"""
import os
from pathlib import Path
from tests.leftovers import session_lock
with session_lock({killed!r}, Path({str(runs)!r})):
    os._exit(9)
"""], cwd=Path(__file__).resolve().parents[2])
    assert child.returncode == 9 and (runs / killed).exists()
    refs = [tag(engine, f"{killed}-repro:a"), tag(engine, f"127.0.0.1:5999/{killed}-pushed:b"),
            tag(engine, f"{running}-repro:c"), tag(engine, f"{unknown}-repro:d")]
    try:
        with session_lock(running, runs):
            removed = remove_leftovers(engine.cli, keep=prefix, runs=runs)
        assert sorted(removed) == sorted(refs[:2])
        assert [engine.inspect_image(ref) is None for ref in refs] == [True, True, False, False]
        assert not (runs / killed).exists()
        assert engine.inspect_image(DEFAULT_BASE_IMAGE) is not None  # only tags went
    finally:
        subprocess.run([engine.cli, "image", "rm", *refs], capture_output=True)
