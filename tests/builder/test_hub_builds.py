"""The spawners' image_builder hook as the builder implements it: a fake engine, real git."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from dsbuild.builder.hub_builds import build_image, split_image
from dsbuild.builder.names import REF_LABEL
from dsbuild.builder.source import GitSource
from dsbuild.builder.workspace import Workspace

from .test_service import FakeEngine, git_repo


@pytest.mark.parametrize("image, expected", [
    ("registry.example.org/dsbuild-git/a-1:main", ("registry.example.org", "dsbuild-git/a-1")),
    ("localhost:5000/a:v1", ("localhost:5000", "a")),
    ("team/a:v1", (None, "team/a")),
    ("a", (None, "a")),
])
def test_split_image(image, expected):
    assert split_image(image) == expected


def test_the_hook_builds_the_commit_under_the_templates_name(tmp_path):
    url, sha = git_repo(tmp_path / "repo")
    engine, workspace = FakeEngine(), Workspace.at(tmp_path / "cache")
    spawner = SimpleNamespace(resource_request=SimpleNamespace(image="dsbuild-git/repo-1234abcd:main"),
                              log=logging.getLogger("test"), _log_name="rita")
    image = asyncio.run(build_image(spawner, GitSource(url, "main"), engine, workspace))
    assert image == f"dsbuild-git/repo-1234abcd:{sha[:12]}"
    assert engine.image_labels(image)[REF_LABEL] == "main" and len(engine.builds) == 1
    again = asyncio.run(build_image(spawner, GitSource(url, "main"), engine, workspace))
    assert again == image and len(engine.builds) == 1  # found, not built twice
