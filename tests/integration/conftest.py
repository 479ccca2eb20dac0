"""Fixtures for tests on the real Docker engine. In CI (CI=true) a missing engine fails
the run instead of skipping: scripts/test.sh starts one."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import uuid

import pytest

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import EngineUnavailable
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.names import environment_options, environment_suffix, image_tag
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.service import BuildRequest, Built, build
from tests.conftest import NOTEBOOKS
from tests.leftovers import remove_leftovers, session_lock


@pytest.fixture(scope="session")
def engine() -> DockerEngine:
    try:
        engine = DockerEngine()
        engine.ping()
    except EngineUnavailable as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine: {err}")
        pytest.skip(f"no Docker engine here ({err}); scripts/test.sh starts one")
    return engine


@pytest.fixture(scope="session")
def prefix(engine):
    """Image names for this session; every image and container made under it is removed at
    the end, and first those that killed sessions left (tests/leftovers.py)."""
    value = f"dsbuild-test-{uuid.uuid4().hex[:8]}"
    cli = engine.cli
    with session_lock(value):
        remove_leftovers(cli, keep=value)
        yield value
        containers = subprocess.run([cli, "ps", "-aq", "--filter", f"label=io.dsbuild.test={value}"], capture_output=True, text=True).stdout.split()
        if containers:
            subprocess.run([cli, "rm", "-f", *containers], capture_output=True)
        images = subprocess.run([cli, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout.split()
        mine = [image for image in images if image.startswith(value) or f"/{value}-" in image]  # pushed ones too
        if mine:
            subprocess.run([cli, "image", "rm", "-f", *mine], capture_output=True)


def plain_tag(content_tag: str) -> str:
    """The tag of a build with default options on this machine (its index settings count)."""
    return image_tag(content_tag, environment_suffix(environment_options(BuildOptions(), read_host_settings())))


def build_all(request: BuildRequest, engine: DockerEngine) -> tuple[Built, list]:
    events = list(build(request, engine))
    built = events[-1]
    assert isinstance(built, Built)
    return built, events


def docker_run(engine: DockerEngine, image: str, *command: str, volumes: tuple[str, ...] = ()) -> str:
    args = [engine.cli, "run", "--rm", "--network=none"]
    for volume in volumes:
        args += ["-v", volume]
    done = subprocess.run([*args, image, *command], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def run_sketches_notebook(engine: DockerEngine, image: str) -> None:
    """notebooks/sketches.ipynb runs in the image without an error, with the results it should have."""
    out = docker_run(
        engine,
        image,
        "bash",
        "-c",
        "jupyter execute --output=/tmp/out.ipynb notebooks/sketches.ipynb >/dev/null 2>&1 && cat /tmp/out.ipynb",
        volumes=(f"{NOTEBOOKS}:/home/jovyan/notebooks:ro",),
    )
    cells = [c for c in json.loads(out)["cells"] if c["cell_type"] == "code"]
    assert all(not any(o.get("output_type") == "error" for o in c["outputs"]) for c in cells)
    summary = ast.literal_eval("".join(cells[-1]["outputs"][0]["data"]["text/plain"]))
    assert 0 < summary["bloom_fp"] < 0.02 and summary["cms_within_bound"] > 0.99
