"""The service's garbage collection on a timer: git mirrors, build contexts, the
service's own images (PREFIX-*) and the engine's build cache, by age and disk use, with the same code as `dsbuild gc`
(builder/gc.py). A public service fetches and builds whatever it is linked to, so
without this its disk fills. `--gc-interval 0` turns it off (then run `dsbuild gc` from
cron instead)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.gc import GcPolicy, GcReport, collect_garbage

log = logging.getLogger("dsbuild.launch")
Collect = Callable[[Path, DockerEngine | None, GcPolicy], GcReport]


class GarbageTimer:
    """Every `interval` seconds, collect garbage in a worker thread (the event loop keeps
    serving); a failed round is logged and the next one runs as planned."""

    def __init__(self, interval: float, cache: Path, engine: Callable[[], DockerEngine | None], policy: GcPolicy,
                 collect: Collect = collect_garbage):
        self.interval = interval
        self.cache = cache
        self.engine = engine
        self.policy = policy
        self.collect = collect
        self.rounds = 0

    def collect_once(self) -> GcReport:
        report = self.collect(self.cache, self.engine(), self.policy)
        self.rounds += 1
        if report.removed:
            log.info("garbage collection: removed %d item(s), %.1f MiB", len(report.removed), report.freed / 2**20)
        return report

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.collect_once)
            except Exception:  # noqa: BLE001 -- one failed round must not stop the next
                log.exception("garbage collection failed; trying again in %.0f s", self.interval)


def service_gc_policy(max_age: float, max_bytes: int, image_prefix: str) -> GcPolicy:
    """Only this service's images (its prefix) are candidates, never another's or a base;
    the engine's build cache (where the per-source package caches grow) is pruned too."""
    return GcPolicy(max_age=max_age, max_bytes=max_bytes or None, only_images=f"{image_prefix}-*", build_cache=True)
