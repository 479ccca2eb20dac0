"""A push that fails leaves the engine's tags as they were before the build: a tag the
build made is removed, a tag it moved names its earlier image again, and a tag that was
there already (a skipped build's push) stays. Fake engine, real workspace; no Docker."""

from __future__ import annotations

import pytest

from dsbuild.builder import target as target_module
from dsbuild.builder.errors import BuildFailed
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import BuildRequest, build
from dsbuild.builder.workspace import Workspace

from .test_service import FakeEngine, folder

REGISTRY = Registry("127.0.0.1:5999")


class RefusingEngine(FakeEngine):
    """A local engine whose registry refuses every push."""

    tags_locally = True

    def __init__(self):
        super().__init__()
        self.pushed: list[str] = []

    def push(self, ref):
        self.pushed.append(ref)
        raise BuildFailed(f"pushing {ref} failed: denied: requested access to the resource is denied")

    def remove_unused_image(self, ref):
        return self.tags.pop(ref, None) is not None


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    monkeypatch.setattr(target_module, "manifest_exists", lambda *args: False)


@pytest.fixture
def workspace(tmp_path):
    return Workspace.at(tmp_path / "cache")


def test_a_refused_push_leaves_no_new_tag(tmp_path, workspace):
    engine = RefusingEngine()
    tags = dict(engine.tags)
    with pytest.raises(BuildFailed, match="denied"):
        list(build(BuildRequest(folder(tmp_path / "analysis"), registry=REGISTRY, push=True), engine, workspace))
    assert engine.pushed and engine.pushed[0].startswith(REGISTRY.host + "/dsbuild-analysis-")
    assert engine.tags == tags  # the new image's tag is gone, the base's stays


def test_a_refused_push_of_a_rebuild_gives_the_tag_back_to_the_earlier_image(tmp_path, workspace):
    engine = RefusingEngine()
    source = folder(tmp_path / "analysis")
    events = list(build(BuildRequest(source, registry=REGISTRY), engine, workspace))  # no --push
    ref = events[-1].image
    earlier = engine.tags[ref]
    with pytest.raises(BuildFailed):
        list(build(BuildRequest(source, registry=REGISTRY, push=True, force=True), engine, workspace))
    assert len(engine.builds) == 2 and engine.pushed == [ref]
    assert engine.tags[ref] == earlier


def test_a_refused_push_of_a_built_image_keeps_its_tag(tmp_path, workspace):
    engine = RefusingEngine()
    source = folder(tmp_path / "analysis")
    ref = list(build(BuildRequest(source, registry=REGISTRY), engine, workspace))[-1].image
    with pytest.raises(BuildFailed):
        list(build(BuildRequest(source, registry=REGISTRY, push=True), engine, workspace))
    assert len(engine.builds) == 1 and engine.pushed == [ref]  # skipped, pushed, refused
    assert ref in engine.tags


def test_an_abandoned_push_leaves_no_new_tag(tmp_path, workspace):
    """The launch service closes the build's events when nobody follows them any more."""
    engine = RefusingEngine()
    tags = dict(engine.tags)
    events = build(BuildRequest(folder(tmp_path / "analysis"), registry=REGISTRY, push=True), engine, workspace)
    for event in events:
        if getattr(event, "phase", "") == "pushing":
            events.close()
            break
    assert engine.pushed == [] and engine.tags == tags
