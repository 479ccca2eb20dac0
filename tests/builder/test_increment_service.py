"""`build()` with the incremental dependency layer, on a fake engine that lists images:
which earlier image is built upon (only the same source's), what the build says, the
labels, the pin tag, and the full builds (--no-cache, the chain's bound)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dsbuild.builder.names import INCREMENT_LABEL, INCREMENTAL_FROM_LABEL, STACK_LABEL
from dsbuild.builder.service import BuildRequest, Status
from dsbuild.builder.workspace import Workspace

from .test_service import FakeEngine, folder, run


@pytest.fixture
def workspace(tmp_path):
    return Workspace.at(tmp_path / "cache")


class ListingEngine(FakeEngine):
    """The fake engine, plus `docker images --filter reference=NAME` (newest first) and
    untagging; it remembers each build's phases."""

    def __init__(self):
        super().__init__()
        self.phases: list[tuple[str, ...]] = []
        self.order: list[str] = []

    def build(self, context, dockerfile, phases, labels, no_cache, *args, **kw):
        self.phases.append(tuple(phases))
        yield from super().build(context, dockerfile, phases, labels, no_cache, *args, **kw)

    def tag(self, image_id, ref):
        super().tag(image_id, ref)
        self.order.insert(0, ref)

    def image_refs(self, filters=()):
        name = filters[0].removeprefix("reference=")
        return [ref for ref in self.order if ref in self.tags and ref.rpartition(":")[0] == name]

    def remove_unused_image(self, ref):
        return self.tags.pop(ref, None) is not None


def planning(events):
    return [e.message for e in events if isinstance(e, Status) and e.phase == "planning"]


def test_a_changed_requirement_is_built_upon_the_newest_image_of_the_same_source(tmp_path, workspace):
    engine = ListingEngine()
    path = tmp_path / "analysis"
    request = BuildRequest(folder(path), name="analysis")
    first, events = run(request, engine, workspace)
    assert "full build: no earlier image of this source to build upon" in planning(events)
    assert engine.image_labels(first.image)[STACK_LABEL]
    (path / "requirements.txt").write_text("numpy\nseaborn\n")
    second, events = run(request, engine, workspace)
    assert second.built_upon == first.image
    assert any(m.startswith(f"incremental: installing only the difference on top of {first.image}") for m in planning(events))
    assert engine.phases[-1][:2] == ("base", "incremental")
    labels = engine.image_labels(second.image)
    assert labels[INCREMENT_LABEL] == "1"
    assert labels[INCREMENTAL_FROM_LABEL] == f"{first.image}@{engine.tags[first.image]}"
    assert not [ref for ref in engine.tags if ":dsbuild-" in ref]  # the pin is untagged again
    (path / "requirements.txt").write_text("numpy\nseaborn\npandas\n")
    third, _ = run(replace(request, max_increments=1), engine, workspace)
    assert third.built_upon == "" and INCREMENT_LABEL not in engine.image_labels(third.image)


def test_no_cache_builds_in_full(tmp_path, workspace):
    engine = ListingEngine()
    path = tmp_path / "analysis"
    request = BuildRequest(folder(path), name="analysis")
    run(request, engine, workspace)
    (path / "requirements.txt").write_text("numpy\nseaborn\n")
    built, events = run(replace(request, no_cache=True), engine, workspace)
    assert built.built_upon == "" and "full build: --no-cache asks for a full build" in planning(events)
    assert engine.phases[-1][:2] == ("base", "base")


def test_another_sources_image_of_the_same_name_is_never_built_upon(tmp_path, workspace):
    engine = ListingEngine()
    theirs = BuildRequest(folder(tmp_path / "a" / "analysis"), name="shared")
    run(theirs, engine, workspace)
    mine = BuildRequest(folder(tmp_path / "b" / "analysis", "numpy\nseaborn\n"), name="shared")
    built, events = run(mine, engine, workspace)
    assert built.built_upon == "" and "full build: no earlier image of this source to build upon" in planning(events)
