"""Watch one `docker build` process: its deadline, its log budget, bounded lines.

Killing the docker client cancels the build in BuildKit (the session ends, the running
step's processes are killed, nothing is exported), so every way a build is stopped here
(deadline, too much output, the caller abandoning the generator) ends the same way."""

from __future__ import annotations

import subprocess
import threading
from typing import Iterator

from .errors import BuildFailed
from .limits import BuildPolicy

MAX_LINE = 16 * 1024  # longer lines are cut (BuildKit already splits a step's output into lines)


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 1024} KiB"


class BuildStopped(BuildFailed):
    """dsbuild cancelled the build: it ran past its deadline or printed too much."""


class BuildWatch:
    def __init__(self, process: subprocess.Popen, policy: BuildPolicy):
        self.process = process
        self.policy = policy
        self.reason: str | None = None
        self._timer: threading.Timer | None = None
        if policy.deadline:
            self._timer = threading.Timer(policy.deadline, self._stop, (f"the build ran longer than {policy.deadline:.0f} s",))
            self._timer.daemon = True
            self._timer.start()

    def _stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self.process.poll() is None:
            self.process.kill()

    def lines(self) -> Iterator[str]:
        stream = self.process.stdout
        assert stream is not None
        budget = self.policy.log_bytes
        seen = 0
        while raw := stream.readline(MAX_LINE):
            seen += len(raw)
            if budget is not None and seen > budget:
                self._stop(f"the build printed more than {_size(budget)} of output")
                return
            yield raw.decode(errors="replace").rstrip("\n")

    def stop(self, finished: bool = False) -> None:
        """Cancel the build if it still runs (the caller stopped reading, or a limit was
        reached). `finished`: the output ended, so the client is exiting by itself; give
        it time rather than cancel a build that is being exported."""
        if self._timer is not None:
            self._timer.cancel()
        if finished and self.reason is None:
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        if self.process.poll() is None:
            self.process.kill()

    def raise_if_stopped(self) -> None:
        if self.reason is not None:
            raise BuildStopped(f"{self.reason}; it was cancelled and nothing was tagged")
