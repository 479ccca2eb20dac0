"""Images that an interrupted run of the integration tests left behind. Each session
names its images `dsbuild-test-<8 hex>-...` (tests/integration/conftest.py) and holds an
flock on a file of that name in RUNS while it runs; its teardown removes its images.
A killed session cannot, so the next session removes the images of every session whose
lock file is no longer held. An image of a session without a lock file (a run of older
code, or of another worktree's) goes once it was tagged more than LEGACY_AGE ago: no
session runs that long, so a session running meanwhile never loses an image."""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import tempfile
import time
from calendar import timegm
from contextlib import contextmanager
from pathlib import Path

RUNS = Path(tempfile.gettempdir()) / "dsbuild-test-runs"
TEST_IMAGE = re.compile(r"(?:^|/)(dsbuild-test-[0-9a-f]{8})-")
LEGACY_AGE = 6 * 3600


@contextmanager
def session_lock(prefix: str, runs: Path = RUNS):
    """Mark the session `prefix` as running until the block ends (or the process dies)."""
    runs.mkdir(exist_ok=True)
    path = runs / prefix
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _state(prefix: str, runs: Path) -> str:
    """'running', 'ended' (its lock file is there and free) or 'unknown' (no lock file)."""
    try:
        with open(runs / prefix) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "running"
            return "ended"
    except FileNotFoundError:
        return "unknown"


def _tagged_long_ago(cli: str, ref: str) -> bool:
    done = subprocess.run([cli, "image", "inspect", "--format", "{{json .Metadata.LastTagTime}}", ref],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return False
    stamp = json.loads(done.stdout or '""')[:19]
    try:
        tagged = timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return False
    return time.time() - tagged > LEGACY_AGE


def remove_leftovers(cli: str, keep: str = "", runs: Path = RUNS) -> list[str]:
    """Untag the images of ended sessions (never `keep`'s, nor a running one's), after
    removing their containers (labelled io.dsbuild.test=PREFIX); the refs removed."""
    listed = subprocess.run([cli, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True).stdout.split()
    states: dict[str, str] = {}
    doomed = []
    for ref in listed:
        found = TEST_IMAGE.search(ref)
        if not found or found.group(1) == keep:
            continue
        prefix = found.group(1)
        state = states.setdefault(prefix, _state(prefix, runs))
        if state == "ended" or (state == "unknown" and _tagged_long_ago(cli, ref)):
            doomed.append((prefix, ref))
    for prefix in {prefix for prefix, _ in doomed}:
        containers = subprocess.run([cli, "ps", "-aq", "--filter", f"label=io.dsbuild.test={prefix}"],
                                    capture_output=True, text=True).stdout.split()
        if containers:
            subprocess.run([cli, "rm", "-f", *containers], capture_output=True)
    removed = [ref for _, ref in doomed if subprocess.run([cli, "image", "rm", ref], capture_output=True).returncode == 0]
    for prefix, state in states.items():
        if state == "ended":
            (runs / prefix).unlink(missing_ok=True)
    return removed
