"""/metrics in Prometheus format, scraped during and after launches (the web service
in-process, real git; the builder and JupyterHub are fakes)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from prometheus_client.parser import text_string_to_metric_families

from dsbuild.builder.progress import StepStarted
from dsbuild.builder.target import IN_REGISTRY

from .conftest import FakeBuild, FakeHub, get
from .test_app import git_path, launch_stream, repo, run  # noqa: F401 -- the repo fixture

__all__ = ["repo"]


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class StepBuild(FakeBuild):
    """A build that runs one step (running, not queued, from then on)."""

    def __call__(self, checked):
        yield StepStarted(1, 9, "dependencies", "RUN uv pip install")
        yield from super().__call__(checked)


class RegistryBuild(FakeBuild):
    """A build that finds its image in the registry."""

    def __call__(self, checked):
        for event in super().__call__(checked):
            yield replace(event, skipped=True, found=IN_REGISTRY) if hasattr(event, "found") else event


def test_metrics_count_a_launch_its_build_and_the_running_build(repo):  # noqa: F811
    gate = threading.Event()

    async def scenario(base, _):
        stream = asyncio.ensure_future(launch_stream(base, git_path(repo)))
        during = None
        while not stream.done():
            scraped = await get(base + "/metrics")
            if samples(scraped.body).get(("dsbuild_builds_running", ())) == 1:
                during = scraped
                break
            await asyncio.sleep(0.02)
        gate.set()
        await stream
        refused = await get(f"{base}/v2/{git_path(repo, 'no-such-branch')}")
        return during, refused, await get(base + "/metrics")

    during, refused, after = run(scenario, build=StepBuild(gate), hub=FakeHub())
    assert during is not None, "no scrape saw the build running"
    assert during.headers["Content-Type"].startswith("text/plain; version=")
    assert refused.code == 404
    values = samples(after.body)
    assert values[("dsbuild_launches_total", (("outcome", "ready"),))] == 1
    assert values[("dsbuild_launch_duration_seconds_count", (("outcome", "ready"),))] == 1
    assert values[("dsbuild_build_duration_seconds_count", (("outcome", "built"),))] == 1
    assert values[("dsbuild_builds_running", ())] == 0 and values[("dsbuild_builds_queued", ())] == 0
    assert values[("dsbuild_launches_refused_total", (("reason", "not-found"),))] == 1
    assert values[("dsbuild_registry_skips_total", ())] == 0


def test_metrics_count_registry_skips_and_failures(repo):  # noqa: F811
    class Failing(FakeBuild):
        def __call__(self, checked):
            from dsbuild.builder.errors import BuildFailed

            yield from ()
            raise BuildFailed("step 5/9 failed: exit code 1")

    async def launch_then_scrape(base, _):
        await launch_stream(base, git_path(repo))
        return await get(base + "/metrics")

    skipped = samples(run(launch_then_scrape, build=RegistryBuild(), hub=FakeHub()).body)
    assert skipped[("dsbuild_registry_skips_total", ())] == 1
    assert skipped[("dsbuild_build_duration_seconds_count", (("outcome", "skipped"),))] == 1
    failed = samples(run(launch_then_scrape, build=Failing(), hub=FakeHub()).body)
    assert failed[("dsbuild_launches_total", (("outcome", "build"),))] == 1
    assert failed[("dsbuild_build_duration_seconds_count", (("outcome", "failed"),))] == 1
