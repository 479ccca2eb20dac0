"""A public service fills its disk with whatever it is linked to unless it collects
garbage: `dsbuild serve` runs builder/gc.py on a timer (--gc-interval, 0 = off), on its
own cache and only its own images (PREFIX-*)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsbuild.builder.gc import USED_MARK, GcPolicy, GcReport, collect_garbage
from dsbuild.launch.cli import _garbage_timer
from dsbuild.launch.config import LaunchConfig
from dsbuild.launch.housekeeping import GarbageTimer
from dsbuild.launch.preflight import Preflight

WEEK = 7 * 86400


def _mirror(cache: Path, name: str, age: float) -> Path:
    folder = cache / "git" / name
    folder.mkdir(parents=True)
    (folder / "objects").write_bytes(b"x" * 1000)
    mark = folder / USED_MARK
    mark.touch()
    when = time.time() - age
    os.utime(mark, (when, when))
    return folder


def _until(check, rounds: int = 600) -> bool:
    for _ in range(rounds):  # a bound, not a timing assertion
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_the_timer_removes_what_is_old_and_keeps_the_rest(tmp_path):
    old, fresh = _mirror(tmp_path, "old", 2 * WEEK), _mirror(tmp_path, "fresh", 60)
    timer = GarbageTimer(0.05, tmp_path, lambda: None, GcPolicy(max_age=WEEK))

    async def main():
        task = asyncio.create_task(timer.run())
        while timer.rounds < 2:
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert not old.exists() and fresh.exists()


def test_a_failed_round_does_not_stop_the_timer(tmp_path):
    calls: list[int] = []

    def collect(cache, engine, policy) -> GcReport:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk went away")
        return collect_garbage(cache, engine, policy)

    timer = GarbageTimer(0.02, tmp_path, lambda: None, GcPolicy(), collect)

    async def main():
        task = asyncio.create_task(timer.run())
        while timer.rounds < 1:
            await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert len(calls) >= 2 and timer.rounds >= 1


def _config(**kw) -> LaunchConfig:
    return LaunchConfig(hub_url="http://127.0.0.1:8000/", hub_token="t", **kw)


def test_the_service_collects_only_its_own_images_and_can_be_switched_off(tmp_path):
    config = _config(image_prefix="mybinder", gc_max_age=3600, gc_max_disk=2**30)
    timer = _garbage_timer(config, Preflight(config))
    assert timer is not None and timer.interval == 3600
    assert timer.policy.only_images == "mybinder-*" and timer.policy.build_cache and timer.policy.max_age == 3600 and timer.policy.max_bytes == 2**30
    assert _garbage_timer(_config(gc_interval=0), Preflight(config)) is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.docker
def test_dsbuild_serve_collects_garbage_on_its_timer(tmp_path):
    """The real `dsbuild serve` process (no hub needed for this): an old mirror in its cache
    is removed on the first round, a fresh one kept; the service is stopped afterwards."""
    cache = tmp_path / "cache"
    old, fresh = _mirror(cache, "old", 2 * WEEK), _mirror(cache, "fresh", 60)
    token = tmp_path / "token"
    token.write_text("t\n")
    env = {**os.environ, "DSBUILD_CACHE_DIR": str(cache)}
    cmd = [str(Path(sys.executable).parent / "dsbuild"), "serve", "--port", str(_free_port()), "--hub-url", "http://127.0.0.1:9/",
           "--hub-token-file", str(token), "--hub-state", str(tmp_path / "state"), "--gc-interval", "0.5",
           "--image-prefix", f"gc-test-{os.getpid()}"]
    service = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert _until(lambda: not old.exists() or service.poll() is not None), "the old mirror was never collected"
        assert service.poll() is None, service.stdout.read().decode()[-2000:]
        assert fresh.exists()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
