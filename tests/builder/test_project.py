"""The repository's own package in the lock (pieces/project.py, the plan and the
Dockerfile): its dependencies are resolved with the rest, its code installed with
--no-deps; static pyproject dependencies are read here, the others come from a build
stage of their own. Pure: no engine (the real one: tests/integration/test_project_lock.py)."""

from __future__ import annotations

import pytest

from dsbuild.builder.envlock import own_and_outside
from dsbuild.builder.errors import ConfigError
from dsbuild.builder.facts import RepoFacts
from dsbuild.builder.limits import limited_steps
from dsbuild.builder.pieces.base import RepoInstall
from dsbuild.builder.pieces.project import PROJECT_FILE, path_install, static_dependencies
from dsbuild.builder.plan import BuildOptions, plan
from dsbuild.builder.progress import ProgressParser, StepStarted
from dsbuild.builder.render import render_dockerfile

from .test_plan import BASE

PYPROJECT = """
[project]
name = "demo"
version = "0.1"
dependencies = ["toolz>=0.12", "tabulate ; python_version >= '3'"]
[project.optional-dependencies]
Dev_Tools = ["pytest>=8"]
"""
SETUP_PY = "from setuptools import setup\nsetup(name='legacy', install_requires=['tabulate<0.9'])\n"


def test_static_dependencies_and_the_extras_asked_for():
    assert static_dependencies(PYPROJECT, ()) == ("toolz>=0.12", "tabulate ; python_version >= '3'")
    assert static_dependencies(PYPROJECT, ("dev-tools",))[-1] == "pytest>=8"


@pytest.mark.parametrize("text", [
    '[project]\nname = "d"\ndynamic = ["dependencies"]\n',  # the backend decides them
    '[build-system]\nrequires = ["setuptools"]\n',  # no [project]: setup.py's
])
def test_dependencies_that_are_not_static_are_not_read(text):
    assert static_dependencies(text, ()) is None


def test_a_dependency_that_is_not_a_requirement_is_refused():
    with pytest.raises(ConfigError, match="is not a requirement"):
        static_dependencies('[project]\nname = "d"\ndependencies = ["--index-url http://x"]\n', ())


@pytest.mark.parametrize("line,expected", [
    ("-e .", RepoInstall("editable", ".")),
    ("--editable=./src/pkg[a,b]", RepoInstall("editable", "src/pkg", ("a", "b"))),
    (".", RepoInstall("local", ".")),
    ("-r more.txt", None),
    ("numpy", None),
])
def test_path_lines(line, expected):
    assert path_install(line, "requirements.txt") == expected


def test_pyproject_dependencies_go_into_the_lock_and_the_code_installs_without_them():
    p = plan(RepoFacts("", {"pyproject.toml": PYPROJECT, "requirements.txt": "numpy\n-e .[dev-tools]\n"}), BASE)
    files = {f.name: f.content for f in p.env_files}
    assert files["requirements.txt"] == "numpy\n"
    assert files[PROJECT_FILE].splitlines() == ["toolz>=0.12", "tabulate ; python_version >= '3'", "pytest>=8"]
    assert p.repo_installs == (RepoInstall("editable", ".", ("dev-tools",)),) and p.project_metadata == ()
    text = render_dockerfile(p).text
    assert f"/srv/dsbuild/env/{PROJECT_FILE}" in text  # resolved into the lock
    assert "uv pip install --no-deps -e '.[dev-tools]'" in text and "AS dsbuild-project" not in text


def test_a_committed_lock_must_hold_the_pyproject_dependencies():
    files = {"pyproject.toml": PYPROJECT, "requirements.lock": "toolz==0.12.0\njupyterlab==4.0.9\njupyterhub==5.0.0\n"}
    with pytest.raises(ConfigError, match=r"pyproject.toml \[project\] dependencies: tabulate is not in the lock"):
        plan(RepoFacts("", files), BASE)


def test_setup_py_dependencies_come_from_a_metadata_stage_and_are_checked_before_resolving():
    p = plan(RepoFacts("", {"setup.py": SETUP_PY}), BASE)
    assert p.project_metadata == (RepoInstall("editable", "."),)
    rendered = render_dockerfile(p, "0123456789abcdef", limits=True)
    text = rendered.text
    stage, main = text.split("# dsbuild-phase: base\n")
    assert "FROM dsbuild-base:bookworm AS dsbuild-project" in stage and "/tmp/dsbuild/bin/limits.sh" in stage
    assert "dsbuild-uv-9d87a9476c76-src-0123456789abcdef" in stage  # the source's own package cache only
    assert 'COPY --from=dsbuild-project ["/tmp/dsbuild-project.requires", "/srv/dsbuild/env/project.requires"]' in main
    deps = main.split("# dsbuild-phase: dependencies")[1].split("# dsbuild-phase: repository")[0]
    assert deps.index("grep -qvE") < deps.index("uv pip compile") and "/srv/dsbuild/env/project.requires" in deps
    assert "-env-" not in deps  # the metadata is not in the environment hash: no shared cache
    # the stage's steps are numbered after the main stage's, and they run with the limits
    assert rendered.phases[0] == "base" and rendered.phases[-3:] == ("project metadata",) * 3
    assert len(rendered.phases) in limited_steps(rendered.phases)


def test_a_locked_setup_py_build_checks_the_lock_holds_the_metadatas_requirements():
    files = {"setup.py": SETUP_PY, "requirements.lock": "tabulate==0.8.10\njupyterlab==4.0.9\njupyterhub==5.0.0\n"}
    p = plan(RepoFacts("", files), BASE, BuildOptions(locked=True))
    deps = render_dockerfile(p).text.split("# dsbuild-phase: dependencies")[1].split("# dsbuild-phase: repository")[0]
    assert "uv pip compile" not in deps
    assert "uv pip install --quiet --offline --no-index -r /srv/dsbuild/env/project.requires" in deps
    lines = deps.strip().splitlines()
    assert all(a.rstrip().endswith("\\") for a, b in zip(lines, lines[1:]) if b.startswith((" &&", " ||"))), deps


def test_progress_numbers_the_metadata_stage_after_the_main_stage():
    phases = ("base", "jupyter", "dependencies", "project metadata", "project metadata")
    parser = ProgressParser(phases)
    assert parser.feed("#5 [dsbuild-project 2/2] RUN uv venv") == [StepStarted(5, 5, "project metadata", "RUN uv venv")]
    assert parser.feed("#6 [stage-1 3/3] RUN uv pip sync") == [StepStarted(3, 3, "dependencies", "RUN uv pip sync")]
    parser.feed("#7 [dsbuild-project 1/2] FROM base")
    parser.feed("#7 DONE 0.0s")
    parser.feed("#5 DONE 1.0s")
    assert parser.ran == [5]  # a FROM runs nothing


def test_show_tells_the_repositorys_own_code_from_what_postbuild_added():
    lock = "toolz==0.12.1\n"
    installed = "toolz-0.12.1.dist-info\nforger-0.1.0.dist-info\ntabulate-0.9.0.dist-info\n"
    assert own_and_outside(lock, installed, "forger-0.1.0.dist-info\n") == ({"forger": "0.1.0"}, {"tabulate": "0.9.0"})
