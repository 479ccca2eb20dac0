"""One build per repository and commit: followers, limits, failures. The builder is a
fake generator gated by the test, run in the registry's thread like the real one."""

from __future__ import annotations

import asyncio
import threading

import pytest
from dsbuild.builder.errors import BuildFailed
from dsbuild.builder.fetch import Resolved
from dsbuild.builder.progress import LogLine
from dsbuild.builder.service import Built, Status
from dsbuild.builder.source import GitSource
from dsbuild.launch.builds import BuildKey, BuildRegistry
from dsbuild.launch.errors import TooManyBuilds

KEY = BuildKey("file:///r", "a" * 40)


class FakeBuild:
    """A build that emits two events, then waits for `release` before finishing."""

    def __init__(self, fail: bool = False):
        self.calls = 0
        self.release = threading.Event()
        self.fail = fail

    def __call__(self):
        self.calls += 1
        yield Status("building", "building x:1")
        yield LogLine("dependencies", "Collecting numpy")
        self.release.wait(10)
        if self.fail:
            raise BuildFailed("numpy==0.0 does not exist")
        yield Built("x:1", "sha256:1", Resolved(GitSource("file:///r", "a" * 40), "a" * 40, "a" * 40))


async def collect(job):
    return [event.message async for event in job.follow()]


def test_a_second_launch_follows_the_running_build():
    async def scenario():
        registry, fake = BuildRegistry(max_builds=1), FakeBuild()
        first, started = registry.join_or_start(KEY, fake, needs_build=True)
        assert started
        while len(first.history) < 2:
            await asyncio.sleep(0.01)
        second, started_again = registry.join_or_start(KEY, fake, needs_build=True)
        assert second is first and not started_again
        readers = [asyncio.ensure_future(collect(first)), asyncio.ensure_future(collect(second))]
        await asyncio.sleep(0.05)
        fake.release.set()
        logs = await asyncio.gather(*readers)
        built = await second.wait()
        return fake.calls, logs, built, registry

    calls, logs, built, registry = asyncio.run(scenario())
    assert calls == 1
    assert logs[0] == logs[1] == ["building x:1", "Collecting numpy", "built x:1 (0 steps run, 0 cached)"]
    assert built.image == "x:1"
    assert registry.jobs == {} and registry.started_total == 1


def test_a_failed_build_fails_every_follower():
    async def scenario():
        registry, fake = BuildRegistry(max_builds=2), FakeBuild(fail=True)
        job, _ = registry.join_or_start(KEY, fake, needs_build=True)
        other, _ = registry.join_or_start(KEY, fake, needs_build=True)
        fake.release.set()
        results = await asyncio.gather(job.wait(), other.wait(), return_exceptions=True)
        return results, fake.calls

    results, calls = asyncio.run(scenario())
    assert calls == 1
    assert all(isinstance(r, BuildFailed) and "numpy==0.0" in str(r) for r in results)


def test_the_build_limit_refuses_a_new_build_but_not_a_follower_or_a_built_image():
    async def scenario():
        registry, fake = BuildRegistry(max_builds=1), FakeBuild()
        registry.join_or_start(KEY, fake, needs_build=True)
        other = BuildKey("file:///other", "b" * 40)
        with pytest.raises(TooManyBuilds, match="1 builds are running"):
            registry.join_or_start(other, fake, needs_build=True)
        registry.check_capacity(KEY, needs_build=True)  # following is always fine
        already_built = FakeBuild()
        skip, _ = registry.join_or_start(other, already_built, needs_build=False)  # image exists: no build
        assert registry.active() == 1
        fake.release.set()
        already_built.release.set()
        await skip.wait()
        return registry

    registry = asyncio.run(scenario())
    assert registry.started_total == 2
