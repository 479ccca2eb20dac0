"""Servers started in advance for images that were launched recently (anonymous mode).

A launch of an image that has a warm server takes it instead of starting one: the page
goes to JupyterLab as soon as the service has made that user's token. Each warm server
is its own temporary user, created for it and started through the hub like any
launch's, with nobody's token: it is handed to exactly one launch (taken out of the
pool before anything is awaited), gets its token then, and is never pooled again, so
nothing of one user reaches another. After every launch of an image the pool starts
servers for it in the background, up to `per_image` for that image and `size` in all
(the oldest warm servers of other images make room); a warm server nobody took within `idle_timeout` seconds is removed, and so is every
warm server when the service stops (or when one fails to start).

    launch of IMAGE ──take(IMAGE)──▶ warm server? ──yes──▶ token for its user ──▶ ready
                                          │ no
                                          ▼
                              start a server as before
    after either: refill(IMAGE, options) ──▶ new temporary users' servers, in the background
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .hubapi import HubClient
from .stopping import UserRemover

log = logging.getLogger("dsbuild.launch")


@dataclass(frozen=True)
class PoolLimits:
    size: int = 0  # warm servers in all (0: no pool)
    per_image: int = 1  # warm (and starting) servers of one image
    idle_timeout: float = 300.0  # seconds a warm server waits to be taken


@dataclass
class Warm:
    user: str
    image: str
    path: str  # the server's path on the hub, e.g. user/NAME
    since: float


@dataclass
class ServerPool:
    hub: HubClient
    remover: UserRemover
    limits: PoolLimits
    user_prefix: str
    start_timeout: float = 180.0
    clock: Callable[[], float] = time.monotonic
    warm: list[Warm] = field(default_factory=list)
    starting: dict[str, str] = field(default_factory=dict)  # user -> image
    tasks: set[asyncio.Task] = field(default_factory=set)
    closed: bool = False

    @property
    def enabled(self) -> bool:
        return self.limits.size > 0 and self.limits.per_image > 0

    def members(self) -> set[str]:
        """The users whose servers belong to the pool (not counted as launches' servers)."""
        return {w.user for w in self.warm} | set(self.starting)

    def take(self, image: str) -> Warm | None:
        """A warm server of `image`, out of the pool for good (None: there is none)."""
        self.reap()
        for i, warm in enumerate(self.warm):
            if warm.image == image:
                return self.warm.pop(i)
        return None

    def wanted(self, image: str) -> int:
        """How many more servers of `image` the limits allow, once warm servers of other
        images are evicted (oldest first) to make room."""
        if not self.enabled or self.closed:
            return 0
        of_image = sum(1 for w in self.warm if w.image == image) + sum(1 for i in self.starting.values() if i == image)
        return max(0, min(self.limits.per_image - of_image, self.limits.size - of_image))

    def _make_room(self, count: int) -> None:
        """Remove the oldest warm servers until `count` more fit in the size."""
        while self.warm and len(self.warm) + len(self.starting) + count > self.limits.size:
            oldest = min(self.warm, key=lambda w: w.since)
            self.warm.remove(oldest)
            self.remover.remove_soon(oldest.user)
            log.info("pool: %s of %s removed to make room", oldest.user, oldest.image)

    def refill(self, image: str, user_options: dict) -> None:
        """Start servers of `image` in the background, as far as the limits allow; the
        images launched most recently keep their warm servers, the oldest make room."""
        self.reap()
        count = self.wanted(image)
        self._make_room(count)
        count = min(count, self.limits.size - len(self.warm) - len(self.starting))
        for _ in range(max(0, count)):
            user = f"{self.user_prefix}{secrets.token_hex(6)}"
            self.starting[user] = image
            task = asyncio.ensure_future(self._start(user, image, user_options))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _start(self, user: str, image: str, user_options: dict) -> None:
        try:
            await self.hub.create_user(user)
            await self.hub.start_server(user, "", user_options)
            path = await self._wait_ready(user)
        except Exception as err:  # noqa: BLE001 -- a pool that cannot start servers serves launches as before
            log.warning("pool: server %s of %s did not start: %s", user, image, err)
            self.starting.pop(user, None)
            self.remover.remove_soon(user)
            return
        except asyncio.CancelledError:
            self.starting.pop(user, None)
            self.remover.remove_soon(user)
            raise
        self.starting.pop(user, None)
        if self.closed:
            self.remover.remove_soon(user)
            return
        self.warm.append(Warm(user, image, path, self.clock()))
        log.info("pool: %s ready for %s (%d warm)", user, image, len(self.warm))

    async def _wait_ready(self, user: str) -> str:
        path = f"user/{user}"
        async for progress in self.hub.progress(user, "", self.start_timeout):
            if progress.failed:
                raise RuntimeError(progress.message or "the hub could not start it")
            if progress.ready:
                return (progress.url or path).strip("/")
        raise RuntimeError("the hub's progress stream ended before the server was ready")

    def reap(self) -> list[str]:
        """Remove the warm servers nobody took within the idle timeout; their names."""
        now = self.clock()
        old = [w for w in self.warm if now - w.since >= self.limits.idle_timeout]
        for warm in old:
            self.warm.remove(warm)
            self.remover.remove_soon(warm.user)
            log.info("pool: %s of %s idle for %.0fs, removed", warm.user, warm.image, now - warm.since)
        return [w.user for w in old]

    async def run_reaper(self, every: float | None = None) -> None:
        """Reap on a timer (until cancelled)."""
        every = every or max(1.0, min(30.0, self.limits.idle_timeout / 2))
        while True:
            await asyncio.sleep(every)
            self.reap()

    async def close(self, timeout: float = 60) -> None:
        """Stop starting, remove every server the pool started, wait for the removals."""
        self.closed = True
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        for warm in self.warm:
            self.remover.remove_soon(warm.user)
        self.warm.clear()
        await self.remover.drain(timeout)
