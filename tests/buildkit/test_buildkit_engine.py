"""The BuildKit engine against a real buildkitd (built from its Go module by
tests/buildkit/build.sh, started privately here) and a real registry: the same
Dockerfile, cache mounts, index secret and progress events as on Docker; the image
exists only in the registry, and its labels and lock are read from there."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace

import pytest

from dsbuild.builder.buildkit import RUNC, BuildKitEngine
from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_PATH, lock_digest, parse_lock
from dsbuild.builder.names import LOCK_LABEL, OCI_REVISION, SOURCE_HASH_LABEL
from dsbuild.builder.progress import LogLine, StepDone, StepStarted
from dsbuild.builder.pythons import DEFAULT_SUITE, base_ref
from dsbuild.builder.registry import manifest_exists
from dsbuild.builder.registry_images import ImageRef, inspect
from dsbuild.builder.service import BuildRequest, Built, build
from dsbuild.builder.source import LocalSource
from tests.conftest import EXAMPLES
from tests.integration.registry import REGISTRY_BIN, local_registry

from .daemon import build_buildkit, buildkit_bin, private_buildkitd

pytestmark = pytest.mark.buildkit


@pytest.fixture(scope="module")
def bin_dir():
    found, why = buildkit_bin(), ""
    if found is None:  # the first run on a machine builds them (minutes), like the test cluster's
        found, why = build_buildkit()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs buildkitd/buildctl; tests/buildkit/build.sh failed: {why}")
        pytest.skip(f"buildkitd/buildctl could not be built: {why}")
    if not os.path.exists(RUNC) or not os.path.exists(REGISTRY_BIN):
        pytest.skip("needs Debian's runc and docker-registry (scripts/setup.sh installs them)")
    return found


@pytest.fixture(scope="module")
def registry(bin_dir):
    with local_registry() as found:
        yield found


@pytest.fixture(scope="module")
def engine(bin_dir, registry):
    """A private buildkitd, with the default base image pushed to the registry (from the
    local Docker engine, where scripts/setup.sh built it)."""
    docker = DockerEngine()
    base = base_ref(DEFAULT_SUITE)
    if docker.inspect_image(base) is None:
        pytest.skip(f"{base} is not on the Docker engine (scripts/setup.sh builds it)")
    pushed = registry.image(*base.split(":"))
    docker.tag(base, pushed)
    try:
        docker.push(pushed)
    finally:
        docker.remove_image(pushed)  # only the tag: the base stays
    with private_buildkitd(registry, bin_dir) as addr:
        yield BuildKitEngine(addr, registry, cli=str(bin_dir / "buildctl"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("bk") / "sketches"
    shutil.copytree(EXAMPLES / "sketches", path)
    return path


def request(repo, registry, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(repo), host=read_host_settings(), name="dsbuild-test-bk",
                        registry=registry, push=True, **kw)


@pytest.fixture(scope="module")
def first(engine, registry, repo):
    events = list(build(request(repo, registry), engine))
    assert isinstance(events[-1], Built)
    return events[-1], events


def test_the_build_reports_the_same_progress_events_and_pushes(first, registry):
    built, events = first
    started = [e for e in events if isinstance(e, StepStarted)]
    assert {"dependencies", "repository"} <= {e.phase for e in started}
    # numbered as on Docker (FROM is 1); the shared-files stage may start first, numbered after the main stage
    assert min(e.step for e in started) == 2 and max(e.step for e in started) <= started[0].total
    assert {e.step for e in started if e.phase == "shared files"} == {started[0].total - 1, started[0].total}
    logged = {e.phase for e in events if isinstance(e, LogLine)}
    assert {"jupyter", "dependencies"} <= logged, logged  # the steps' own output, by phase
    assert any(isinstance(e, StepDone) for e in events)
    name, tag = built.image.removeprefix(registry.host + "/").split(":")
    assert manifest_exists(registry, name, tag)
    assert built.image_id.startswith(f"{registry.host}/{name}@sha256:")


def test_the_image_is_only_in_the_registry_with_its_labels_and_lock(first, engine, registry):
    built, _ = first
    assert DockerEngine().inspect_image(built.image) is None  # never on the Docker engine
    info = inspect(ImageRef.parse(built.image))
    labels = info["Config"]["Labels"]
    assert labels[SOURCE_HASH_LABEL] and labels[OCI_REVISION]
    lock = engine.read_file(built.image, LOCK_PATH)  # from the image's layers, nothing run
    assert {"numpy", "matplotlib", "jupyterlab"} <= parse_lock(lock).keys()
    assert labels[LOCK_LABEL] == lock_digest(lock)


def test_a_second_request_is_skipped_because_the_registry_has_it(first, engine, registry, repo):
    built, _ = first
    events = list(build(request(repo, registry), engine))
    assert events[-1].skipped and events[-1].image == built.image
    assert not any(isinstance(e, StepStarted) for e in events)


def test_a_rebuild_uses_the_cache_and_the_known_lock(first, engine, registry, repo):
    built, _ = first
    events = list(build(replace(request(repo, registry), force=True), engine))
    again = events[-1]
    assert again.image == built.image and not again.skipped
    assert again.cached_steps and "dependencies" not in {e.phase for e in events if isinstance(e, LogLine)}
    assert engine.image_labels(again.image)[LOCK_LABEL] == engine.image_labels(built.image)[LOCK_LABEL]


def test_a_failing_step_fails_in_one_line_and_tags_nothing(engine, registry, tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "postBuild").write_text("#!/bin/sh\necho about to fail\nexit 3\n")
    (tmp_path / "postBuild").chmod(0o755)
    req = replace(request(tmp_path, registry), name="dsbuild-test-bk-fails")
    with pytest.raises(Exception) as failed:
        list(build(req, engine))
    assert "postBuild" in str(failed.value) or "exit code: 3" in str(failed.value)
    assert "\n" not in str(failed.value)
    done = subprocess.run(["curl", "-s", f"{registry.base_url}/v2/dsbuild-test-bk-fails/tags/list"],
                          capture_output=True, text=True)
    assert '"tags":null' in done.stdout.replace(" ", "") or "NAME_UNKNOWN" in done.stdout
