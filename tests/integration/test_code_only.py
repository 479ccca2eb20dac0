"""A code-only rebuild adds the repository's layer without a build (builder/append.py):
the image holds the change, exactly as a build of the same files would, with true labels."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.names import (
    ENVIRONMENT_LAYERS_LABEL, LOCK_LABEL, OCI_CREATED, OCI_REVISION, OPTIONS_LABEL, SOURCE_HASH_LABEL,
)
from dsbuild.builder.service import Status

from .conftest import build_all, docker_run
from .test_build_run import request

pytestmark = pytest.mark.docker

LISTING = ("find /home /home/jovyan -maxdepth 0 -printf '%m %u %g %p\\n'; "
           "cd /home/jovyan && find . -printf '%y %m %u %g %s %l %p\\n' | sort && "
           "find . -type f -exec sha256sum {} + | sort -k 2")


class BuildingEngine(DockerEngine):
    """The engine as one that cannot add a layer without a build (as the BuildKit engine)."""

    appends_layers = False


def _history(engine, image):
    done = subprocess.run([engine.cli, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
                          capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def _layers(engine, image):
    return engine.inspect_image(image)["RootFS"]["Layers"]


def _repo(path):
    path.mkdir()
    (path / "README.md").write_text("# a notebook repository\n")
    (path / "old.txt").write_text("removed later\n")
    (path / "data").mkdir()
    (path / "data" / "table.csv").write_text("a,b\n1,2\n")
    return path


def test_a_code_only_change_adds_the_repository_layer_without_a_build(engine, prefix, tmp_path):
    repo = _repo(tmp_path / "repo")
    first, _ = build_all(request(prefix, repo, "append"), engine)
    first_labels = engine.image_labels(first.image)
    assert first_labels[ENVIRONMENT_LAYERS_LABEL]

    (repo / "README.md").write_text(f"# changed {uuid.uuid4()}\n")
    (repo / "old.txt").unlink()
    (repo / "data" / "more").mkdir()
    (repo / "data" / "more" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(repo / "data" / "more" / "run.sh", 0o755)
    os.symlink("data/table.csv", repo / "table.csv")
    second, events = build_all(request(prefix, repo, "append"), engine)

    assert any(isinstance(e, Status) and "without a build" in e.message for e in events)
    labels = engine.image_labels(second.image)
    assert labels[OCI_REVISION] == second.resolved.content_id != first_labels[OCI_REVISION]
    assert labels[OCI_CREATED] >= first_labels[OCI_CREATED]
    for name in (LOCK_LABEL, ENVIRONMENT_LAYERS_LABEL, SOURCE_HASH_LABEL, OPTIONS_LABEL):
        assert labels[name] == first_labels[name], name
    assert set(labels) == set(first_labels)  # the base image's labels too, as a build inherits them
    assert _layers(engine, second.image)[:-1] == _layers(engine, first.image)[:-1]
    assert _layers(engine, second.image)[-1] != _layers(engine, first.image)[-1]
    assert "without a build" in _history(engine, second.image)[0]
    assert docker_run(engine, second.image, "cat", "/home/jovyan/README.md").startswith("# changed")

    # A build of the very same files (BuildKit runs the COPY) gives the same tree.
    built, events = build_all(request(prefix, repo, "append-built", force=True), BuildingEngine())
    assert not any(isinstance(e, Status) and "without a build" in e.message for e in events)
    appended = docker_run(engine, second.image, "sh", "-c", LISTING)
    assert "./old.txt" not in appended and "l 777 jovyan jovyan" in appended and "f 755 jovyan" in appended
    assert appended == docker_run(engine, built.image, "sh", "-c", LISTING)
    same = lambda found: {k: v for k, v in found.items() if k != OCI_CREATED}  # noqa: E731
    assert same(engine.image_labels(built.image)) == same(labels)


def test_no_cache_and_a_changed_environment_build(engine, prefix, tmp_path):
    repo = _repo(tmp_path / "repo")
    build_all(request(prefix, repo, "append-env"), engine)
    (repo / "README.md").write_text(f"# changed {uuid.uuid4()}\n")
    _, events = build_all(request(prefix, repo, "append-env", no_cache=True), engine)
    assert not any(isinstance(e, Status) and "without a build" in e.message for e in events)
    (repo / "requirements.txt").write_text("six\n")  # another environment: its layers are not the image's
    built, events = build_all(request(prefix, repo, "append-env"), engine)
    assert not any(isinstance(e, Status) and "without a build" in e.message for e in events)
    assert docker_run(engine, built.image, "python", "-c", "import six; print('ok')").strip() == "ok"
