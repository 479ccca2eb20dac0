"""The incremental dependency layer's decision (incremental or full, from which image)
and its Dockerfile: pure, over plans and the facts the edges collect."""

from dataclasses import replace

import pytest

from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.increment import (
    DEFAULT_MAX_INCREMENTS,
    MAX_LAYERS,
    Previous,
    decide_increment,
    may_build_upon,
    stack_hash,
)
from dsbuild.builder.names import ENVIRONMENT_HASH_LABEL, INCREMENT_LABEL, OPTIONS_LABEL, SOURCE_HASH_LABEL, STACK_LABEL
from dsbuild.builder.plan import NotebookUser, plan
from dsbuild.builder.render import INCREMENT_FROM_PHASE, render_dockerfile, render_incremental

from .test_render import BASE

SOURCE, OPTIONS = "s" * 64, "o" * 16


def plan_of(files):
    return plan(RepoFacts("", files), BASE)


OLD = plan_of({"requirements.txt": "numpy\n"})
NEW = plan_of({"requirements.txt": "numpy\nseaborn\n"})


def previous_of(old_plan=OLD, depth=0, layers=20, **labels):
    base = {SOURCE_HASH_LABEL: SOURCE, OPTIONS_LABEL: OPTIONS, STACK_LABEL: stack_hash(old_plan) or "",
            ENVIRONMENT_HASH_LABEL: old_plan.environment_hash}
    if depth:
        base[INCREMENT_LABEL] = str(depth)
    return Previous("dsbuild-x-12345678:abc", "sha256:" + "a" * 64, {**base, **labels}, layers)


def decide(new_plan=NEW, previous=None, **kw):
    return decide_increment(new_plan, previous, source_hash=SOURCE, options_hash=OPTIONS, **kw)


def test_a_changed_requirement_is_built_upon_the_earlier_image():
    previous = previous_of()
    decision = decide(previous=previous)
    assert decision.incremental and decision.previous == previous and decision.depth == 1
    assert "dsbuild-x-12345678:abc" in decision.why and "sha256:aaaa" in decision.why


@pytest.mark.parametrize("files", [
    {"requirements.txt": "numpy\n", "postBuild": "echo hi\n"},
    {"requirements.txt": "numpy\n", "start": "exec \"$@\"\n"},
    {"requirements.txt": "-e .\n", "setup.py": "from setuptools import setup\nsetup()\n"},
    {"Dockerfile": "FROM x\n"},
])
def test_repositories_with_steps_of_their_own_are_always_built_in_full(files):
    repo_plan = plan_of(files)
    assert stack_hash(repo_plan) is None and not may_build_upon(repo_plan)
    decision = decide(repo_plan, previous_of())
    assert not decision.incremental and "its own steps" in decision.why


def test_an_earlier_image_with_steps_of_its_own_is_not_built_upon():
    decision = decide(previous=previous_of(**{STACK_LABEL: ""}))
    assert not decision.incremental and "differs under the dependencies" in decision.why


def test_no_cache_and_zero_increments_build_in_full():
    assert not decide(previous=previous_of(), no_cache=True).incremental
    assert not may_build_upon(NEW, no_cache=True)
    assert "--max-increments 0" in decide(previous=previous_of(), max_increments=0).why


def test_another_sources_or_other_options_image_is_never_built_upon():
    assert not decide(previous=previous_of(**{SOURCE_HASH_LABEL: "t" * 64})).incremental
    assert not decide(previous=previous_of(**{OPTIONS_LABEL: "p" * 16})).incremental


@pytest.mark.parametrize("other", [
    {"requirements.txt": "numpy\n", "apt.txt": "jq\n"},  # the system packages differ
    {"requirements.txt": "numpy\n", "runtime.txt": "python-3.11\n"},  # the Python asked for
    {"Pipfile": "[packages]\nnumpy = \"*\"\n"},  # other configuration files
])
def test_a_different_stack_under_the_dependencies_builds_in_full(other):
    decision = decide(previous=previous_of(plan_of(other)))
    assert not decision.incremental and "differs under the dependencies" in decision.why


def test_another_notebook_user_is_another_stack():
    assert stack_hash(replace(NEW, user=NotebookUser(1001, "ada"))) != stack_hash(NEW)


def test_the_same_environment_is_left_to_the_layer_cache():
    decision = decide(OLD, previous_of())
    assert not decision.incremental and "only the repository's layers change" in decision.why


def test_chains_are_bounded_by_count_and_layers():
    assert decide(previous=previous_of(depth=DEFAULT_MAX_INCREMENTS - 1)).depth == DEFAULT_MAX_INCREMENTS
    long = decide(previous=previous_of(depth=DEFAULT_MAX_INCREMENTS))
    assert not long.incremental and f"{DEFAULT_MAX_INCREMENTS} increments" in long.why
    assert decide(previous=previous_of(depth=2), max_increments=3).incremental
    assert not decide(previous=previous_of(depth=3), max_increments=3).incremental
    assert not decide(previous=previous_of(layers=MAX_LAYERS)).incremental


def test_the_incremental_dockerfile_is_the_full_builds_own_from_the_environment_files_on():
    full = render_dockerfile(NEW, "0123456789abcdef", limits=True)
    incremental = render_incremental(NEW, "dsbuild-x-12345678:dsbuild-from-abc", "0123456789abcdef", limits=True)
    head, tail = incremental.text.split(INCREMENT_FROM_PHASE)
    assert full.text.endswith(INCREMENT_FROM_PHASE + tail)
    assert "\nFROM dsbuild-x-12345678:dsbuild-from-abc\n" in head
    assert "jupyterlab" not in head and "apt-get" not in head
    assert incremental.phases[:2] == ("base", "incremental")
    # The full build's "shared files" stage (the base's fixed files) is not needed upon an image that has them.
    full_phases = [phase for phase in full.phases if phase != "shared files"]
    assert "shared files" not in incremental.phases
    assert list(incremental.phases[2:]) == full_phases[full_phases.index("environment files"):]
    assert "chown 1000:1000 /srv/dsbuild" in head and "/etc/skel" in head
    # What lies under the dependency step must not run again on top of the earlier image
    # (the splice point is the "environment files" phase of Dockerfile.j2).
    for earlier in ("uv venv", "apt-get", "useradd", "uv pip install jupyterlab", "/etc/pip.conf"):
        assert earlier not in tail, earlier


def test_the_incremental_dockerfile_takes_only_image_references():
    with pytest.raises(Exception, match="earlier image"):
        render_incremental(NEW, "x\nRUN curl evil", "0123456789abcdef")
