"""`build()` and `decide_target()` with a fake engine and a workspace in a temporary folder:
what is reused, what is rebuilt, which tag a build gets, and what the launch path passes.
Real files and real git (a file:// repository); no Docker."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import Resolved
from dsbuild.builder.names import (
    BASE_DEFAULT_PYTHON_LABEL,
    BASE_PYTHONS_LABEL,
    ENVIRONMENT_OPTIONS_LABEL,
    OPTIONS_LABEL,
    REF_LABEL,
    SOURCE_HASH_LABEL,
)
from dsbuild.builder.plan import DEFAULT_BASE_IMAGE, BuildOptions
from dsbuild.builder.progress import BuildFinished
from dsbuild.builder.names import LOCK_ORIGIN_LABEL
from dsbuild.builder.service import BuildRequest, Built, build
from dsbuild.builder.source import GitSource, LocalSource
from dsbuild.builder.target import decide_target
from dsbuild.builder.workspace import Workspace

LOCK = "numpy==2.0.0 --hash=sha256:" + "0" * 64 + "\n"


class FakeEngine:
    """The engine edge in memory: images by id, tags to ids, builds that always succeed."""

    step_limits = True

    def __init__(self):
        self.images = {"sha256:base": {"Id": "sha256:base", "RootFS": {"Layers": ["l0"]},
                                       "Config": {"Labels": {BASE_PYTHONS_LABEL: "3.11=/usr/bin/python3.11",
                                                             BASE_DEFAULT_PYTHON_LABEL: "3.11"}}}}
        self.tags = {DEFAULT_BASE_IMAGE: "sha256:base"}
        self.builds: list[dict[str, str]] = []

    def ping(self):
        return "fake"

    def inspect_image(self, ref):
        return self.images.get(self.tags.get(ref, ref))

    def image_labels(self, ref):
        info = self.inspect_image(ref)
        return None if info is None else dict(info["Config"]["Labels"])

    def build(self, context, dockerfile, phases, labels, no_cache, policy=None, secrets=None, repository="", base=None):
        image_id = f"sha256:built{len(self.builds)}"
        self.builds.append(dict(labels))
        layers = ["l0"] + [f"{image_id}-{i}" for i in range(len(phases))]
        self.images[image_id] = {"Id": image_id, "RootFS": {"Layers": layers}, "Config": {"Labels": dict(labels)}}
        yield BuildFinished(image_id, (), tuple(range(1, len(phases) + 1)))

    def read_file(self, image, path):
        return LOCK

    def add_labels(self, image_id, labels, scratch_ref):
        new = f"{image_id}-relabelled"
        old = self.images[image_id]
        self.images[new] = {**old, "Id": new, "Config": {"Labels": {**old["Config"]["Labels"], **labels}}}
        return new

    def tag(self, image_id, ref):
        self.tags[ref] = image_id

    def push(self, ref):
        raise AssertionError("nothing here pushes")


class NoResolve(Workspace):
    """A workspace that must not resolve: the request carries the commit."""

    def resolve(self, source):
        raise AssertionError(f"resolved {source} again")


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def workspace(tmp_path):
    return Workspace.at(tmp_path / "cache")


def folder(path, requirements="numpy\n"):
    path.mkdir(parents=True)
    (path / "requirements.txt").write_text(requirements)
    return LocalSource(path)


def run(request, engine, workspace) -> tuple[Built, list]:
    events = list(build(request, engine, workspace))
    assert isinstance(events[-1], Built)
    return events[-1], events


def test_first_build_tags_and_labels_then_the_same_request_is_reused(tmp_path, engine, workspace):
    request = BuildRequest(folder(tmp_path / "analysis"))
    first, _ = run(request, engine, workspace)
    assert not first.skipped and first.image.startswith("dsbuild-analysis-")
    labels = engine.image_labels(first.image)
    assert labels[SOURCE_HASH_LABEL] and labels[OPTIONS_LABEL] and labels[ENVIRONMENT_OPTIONS_LABEL] == "defaults"
    assert (workspace.root / "contexts" / first.image.split(":")[0]).is_dir()
    again, _ = run(request, engine, workspace)
    assert again.skipped and again.image == first.image and len(engine.builds) == 1


def test_the_same_name_from_another_source_is_rebuilt_not_reused(tmp_path, engine, workspace):
    a = BuildRequest(folder(tmp_path / "a" / "analysis"), name="shared")
    b = BuildRequest(folder(tmp_path / "b" / "analysis"), name="shared")
    built_a, _ = run(a, engine, workspace)
    built_b, _ = run(b, engine, workspace)
    assert built_a.image == built_b.image  # same content, same explicit name: one tag
    assert not built_b.skipped and len(engine.builds) == 2
    assert engine.image_labels(built_b.image)[SOURCE_HASH_LABEL] != engine.builds[0][SOURCE_HASH_LABEL]


def test_other_environment_options_get_their_own_tag(tmp_path, engine, workspace):
    source = folder(tmp_path / "analysis")
    plain, _ = run(BuildRequest(source), engine, workspace)
    dated, _ = run(BuildRequest(source, BuildOptions(as_of="2024-01-01")), engine, workspace)
    assert dated.image != plain.image and dated.image.startswith(plain.image + "-")
    assert engine.tags[plain.image] != engine.tags[dated.image]  # the plain build was not replaced
    assert engine.image_labels(dated.image)[ENVIRONMENT_OPTIONS_LABEL] == "as-of=2024-01-01"
    assert engine.image_labels(dated.image)[LOCK_ORIGIN_LABEL] == "resolved as of 2024-01-01"
    assert engine.image_labels(plain.image)[LOCK_ORIGIN_LABEL] == plain.lock_origin == "resolved fresh"
    again, _ = run(BuildRequest(source), engine, workspace)
    assert again.skipped and again.lock_origin == "resolved fresh"  # a reused image says it too


def test_an_upgrade_is_a_build_the_decision_counts(tmp_path, engine, workspace):
    request = BuildRequest(folder(tmp_path / "analysis"))
    built, _ = run(request, engine, workspace)
    assert not decide_target(request, workspace, engine).needs_build
    image_id = engine.tags[built.image]
    engine.images[image_id]["Config"]["Labels"][OPTIONS_LABEL] = "from-an-older-dsbuild"
    assert decide_target(request, workspace, engine).needs_build
    assert decide_target(replace(request, force=True), workspace, engine).needs_build


def test_a_missing_base_is_a_build_never_a_reuse(tmp_path, engine, workspace):
    request = BuildRequest(folder(tmp_path / "analysis"), BuildOptions(base_image="other-base:1"))
    target = decide_target(request, workspace, engine)
    assert target.base_id == "" and target.needs_build


def git_repo(path) -> tuple[str, str]:
    path.mkdir()
    (path / "requirements.txt").write_text("numpy\n")
    git = ["git", "-c", "user.email=t@dsbuild", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], cwd=path, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True).stdout.strip()
    return path.as_uri(), sha


def test_a_resolved_request_is_not_resolved_again_and_labels_the_sha(tmp_path, engine, workspace):
    url, sha = git_repo(tmp_path / "repo")
    target = decide_target(BuildRequest(GitSource(url, "main")), workspace, engine)
    assert target.resolved.commit == sha and target.tag == sha[:12] and target.needs_build
    pinned = GitSource(url, sha)
    request = BuildRequest(pinned, resolved=replace(target.resolved, source=pinned))
    built, events = run(request, engine, NoResolve(workspace.root, workspace.fetcher, workspace.locks))
    assert built.image == target.ref and engine.image_labels(built.image)[REF_LABEL] == sha
    assert any(getattr(e, "phase", "") == "fetching" for e in events)


def test_a_ref_that_does_not_exist_is_a_source_error(tmp_path, engine, workspace):
    url, _ = git_repo(tmp_path / "repo")
    with pytest.raises(SourceError):
        decide_target(BuildRequest(GitSource(url, "no-such-branch")), workspace, engine)


def test_resolved_carries_the_commit(tmp_path, workspace):
    url, sha = git_repo(tmp_path / "repo")
    resolved = workspace.resolve(GitSource(url))
    assert resolved == Resolved(GitSource(url), sha, sha)
