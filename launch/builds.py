"""One build per repository and commit at a time.

A `BuildRegistry` holds the running builds by (repository URL, commit). The first launch
of a commit starts a build: the builder's generator (the same `build()` as the CLI) runs
in a thread and its events are appended to the job's history on the event loop. A second
launch of the same commit gets the same job and follows it: it replays the history, then
waits for what comes next. When the build ends the job leaves the registry; a later launch
runs `build()` again, which finds the image and returns at once.

With `cancel_unwatched` (builds on Kubernetes), a build that no launch follows any more
is cancelled at its next event: its generator is closed, so the engine stops it.

At most `max_builds` builds run at once; a launch that would start one more is refused
with `TooManyBuilds`. Builds whose image already exists do not count."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from dsbuild.builder.errors import BuildFailed, DsbuildError
from dsbuild.builder.service import Built, Event

from .errors import TooManyBuilds
from .events import StreamEvent, from_builder
from .metrics import LaunchMetrics

log = logging.getLogger("dsbuild.launch")
MAX_HISTORY = 20_000  # events kept for followers; later log lines are dropped


@dataclass(frozen=True)
class BuildKey:
    url: str
    commit: str

    @property
    def short(self) -> str:
        return f"{self.url}@{self.commit[:12]}"


class BuildJob:
    """One running build: its history of stream events, then its result or error."""

    def __init__(self, key: BuildKey, loop: asyncio.AbstractEventLoop, counts: bool):
        self.key = key
        self.loop = loop
        self.counts = counts  # a real build (the image did not exist when it started)
        self.started = time.monotonic()
        self.history: list[StreamEvent] = []
        self.done = False
        self.building = False  # a build step has started (before: queued)
        self.followers = 0  # launch streams following it now
        self.cancel_unwatched = False  # cancel it when the last follower leaves
        self.cancelled = threading.Event()
        self.result: Built | None = None
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._elided = False

    def publish(self, event: StreamEvent) -> None:
        """Append an event (on the loop's thread) and wake the followers."""
        if len(self.history) >= MAX_HISTORY and event.log:
            if self._elided:
                return
            self._elided = True
            event = StreamEvent("building", "(more build output is not shown here; see the service's log)")
        self.building = self.building or event.step is not None
        self.history.append(event)
        self._wake()

    def finish(self, result: Built | None, error: BaseException | None) -> None:
        self.result, self.error, self.done = result, error, True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self) -> AsyncIterator[StreamEvent]:
        """Every event from the start, then new ones as they come, until the build ends."""
        index = 0
        self.followers += 1
        try:
            while True:
                while index < len(self.history):
                    yield self.history[index]
                    index += 1
                if self.done:
                    return
                await self._changed.wait()
        finally:
            self.followers -= 1
            if self.followers == 0 and not self.done and self.cancel_unwatched:
                log.info("nobody follows the build of %s any more: cancelling it", self.key.short)
                self.cancelled.set()

    async def wait(self) -> Built:
        """The build's result; raises the build's error."""
        while not self.done:
            await self._changed.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _post(job: BuildJob, fn: Callable, *args) -> None:
    """Run fn(*args) on the job's event loop; after shutdown there is no one to tell."""
    try:
        job.loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed
        pass


class BuildRegistry:
    def __init__(self, max_builds: int, metrics: LaunchMetrics | None = None, cancel_unwatched: bool = False):
        self.max_builds = max_builds
        self.cancel_unwatched = cancel_unwatched
        self.jobs: dict[BuildKey, BuildJob] = {}
        self.started_total = 0
        self.metrics = metrics or LaunchMetrics()
        self.metrics.watch_builds(lambda: self.active(building=True), lambda: self.active(building=False))

    def active(self, building: bool | None = None) -> int:
        """Real builds not finished; only those building (or not yet) when `building` is given."""
        return sum(1 for job in list(self.jobs.values())
                   if job.counts and not job.done and building in (None, job.building))

    def check_capacity(self, key: BuildKey, needs_build: bool) -> None:
        """Raise TooManyBuilds if launching `key` would start one build too many."""
        if key in self.jobs or not needs_build:
            return
        if self.active() >= self.max_builds:
            raise TooManyBuilds(
                f"{self.active()} builds are running, the most this server runs at once; try again in a few minutes"
            )

    def join_or_start(self, key: BuildKey, events: Callable[[], Iterator[Event]], needs_build: bool) -> tuple[BuildJob, bool]:
        """The running job for `key`, or a new one running `events()` in a thread.
        Returns (job, started). Call on the event loop's thread."""
        job = self.jobs.get(key)
        if job is not None:
            return job, False
        self.check_capacity(key, needs_build)
        job = BuildJob(key, asyncio.get_running_loop(), counts=needs_build)
        job.cancel_unwatched = self.cancel_unwatched
        self.jobs[key] = job
        self.started_total += 1
        thread = threading.Thread(target=self._run, args=(job, events), name=f"build {key.short}", daemon=True)
        thread.start()
        return job, True

    def _run(self, job: BuildJob, events: Callable[[], Iterator[Event]]) -> None:
        result, error = None, None
        running = events()
        try:
            for event in running:
                if isinstance(event, Built):
                    result = event
                shown = from_builder(event)
                if shown is not None:
                    _post(job, job.publish, shown)
                if job.cancelled.is_set():
                    running.close()  # the engine cancels the build (and removes its pod)
                    raise BuildFailed("the build was cancelled: nobody was waiting for it")
            if result is None:
                raise RuntimeError("the builder ended without a result")
        except BaseException as err:  # noqa: BLE001 -- handed to every follower
            if not isinstance(err, DsbuildError):
                log.exception("build of %s failed", job.key.short)
            error = err
        _post(job, self._finish, job, result, error)

    def _finish(self, job: BuildJob, result: Built | None, error: BaseException | None) -> None:
        if self.jobs.get(job.key) is job:
            del self.jobs[job.key]
        outcome = "failed" if error is not None else "skipped" if result and result.skipped else "built"
        self.metrics.build_ended(outcome, time.monotonic() - job.started)
        job.finish(result, error)
