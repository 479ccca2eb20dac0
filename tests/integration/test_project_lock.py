"""The repository's own package on the real engine: its dependencies are in the lock, its
code is installed on top with --no-deps, and `show` names it as the repository's own code.

- pyproject.toml with static dependencies, resolved as of a date, then its lock committed:
  the plain build installs exactly the locked versions although newer ones are on the
  index now;
- setup.py: its dependencies come from the metadata its build backend writes in a build
  stage of its own, and a committed lock that lacks them stops the build.
Four builds, one at a time; everything is named under the session's prefix."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from dsbuild.builder.envlock import INSTALLED_PATH, PROJECT_PATH, parse_installed
from dsbuild.builder.errors import BuildFailed
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_FILE, LOCK_PATH, parse_lock
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.service import BuildRequest, build
from dsbuild.builder.source import LocalSource
from dsbuild.cli import main

from .conftest import build_all

pytestmark = pytest.mark.docker
AS_OF = "2024-01-01"  # toolz 0.12.0 then; 0.12.1 came out in late January 2024, 1.x since

PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-project"
version = "0.1.0"
dependencies = ["toolz"]

[tool.setuptools]
py-modules = ["demo_project"]
"""
SETUP_PY = """
from setuptools import setup

setup(name="legacy-project", version="1.0", py_modules=["legacy_project"], install_requires=["tabulate<0.9"])
"""


def write(folder, files):
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def request(prefix, path, name, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


@pytest.fixture(scope="module")
def pyproject_repo(tmp_path_factory):
    return write(tmp_path_factory.mktemp("project") / "pyproject",
                 {"pyproject.toml": PYPROJECT, "demo_project.py": "VALUE = 1\n"})


@pytest.fixture(scope="module")
def dated(engine, prefix, pyproject_repo):
    """Resolved as of 2024; its lock is then committed to the repository."""
    built, _ = build_all(request(prefix, pyproject_repo, "project-dated", options=BuildOptions(as_of=AS_OF)), engine)
    result = CliRunner().invoke(main, ["lock", built.image, "-o", str(pyproject_repo / LOCK_FILE)])
    assert result.exit_code == 0, result.output
    return built


def test_pyproject_dependencies_are_in_the_lock_and_the_code_is_outside_it(engine, dated):
    lock = parse_lock(engine.read_file(dated.image, LOCK_PATH))
    assert lock["toolz"] == "0.12.0" and "demo-project" not in lock
    installed = parse_installed(engine.read_file(dated.image, INSTALLED_PATH))
    assert installed["toolz"] == "0.12.0" and installed["demo-project"] == "0.1.0"
    assert parse_installed(engine.read_file(dated.image, PROJECT_PATH)) == {"demo-project": "0.1.0"}
    result = CliRunner().invoke(main, ["show", dated.image])
    assert result.exit_code == 0, result.output
    assert "the repository's own code: 1" in result.output and "demo-project" in result.output
    assert "installed outside the lock: nothing" in result.output


def test_the_committed_lock_installs_exactly_the_locked_versions_after_the_index_moved(
        engine, prefix, pyproject_repo, dated):
    built, _ = build_all(request(prefix, pyproject_repo, "project-locked", options=BuildOptions(locked=True)), engine)
    assert built.lock_origin == f"from the committed lock {LOCK_FILE}"
    committed = parse_lock((pyproject_repo / LOCK_FILE).read_text())
    assert parse_lock(engine.read_file(built.image, LOCK_PATH)) == committed
    installed = parse_installed(engine.read_file(built.image, INSTALLED_PATH))
    assert installed["toolz"] == "0.12.0"  # the index has had newer toolz releases since
    assert {n: v for n, v in installed.items() if committed.get(n) != v} == {"demo-project": "0.1.0"}


@pytest.fixture(scope="module")
def setup_repo(tmp_path_factory):
    return write(tmp_path_factory.mktemp("project") / "setup-py",
                 {"setup.py": SETUP_PY, "legacy_project.py": "VALUE = 2\n"})


@pytest.fixture(scope="module")
def setup_built(engine, prefix, setup_repo):
    return build_all(request(prefix, setup_repo, "project-setup"), engine)


def test_setup_py_dependencies_come_from_its_metadata_built_in_the_build(engine, setup_built):
    built, events = setup_built
    assert built.plan.project_metadata and any(getattr(e, "phase", "") == "project metadata" for e in events)
    lock = parse_lock(engine.read_file(built.image, LOCK_PATH))
    assert lock["tabulate"].startswith("0.8.") and "legacy-project" not in lock
    installed = parse_installed(engine.read_file(built.image, INSTALLED_PATH))
    assert installed["tabulate"] == lock["tabulate"] and installed["legacy-project"] == "1.0"
    assert parse_installed(engine.read_file(built.image, PROJECT_PATH)) == {"legacy-project": "1.0"}


def test_a_committed_lock_without_the_setup_py_dependencies_stops_the_build(engine, prefix, setup_repo, dated):
    (setup_repo / LOCK_FILE).write_text(engine.read_file(dated.image, LOCK_PATH))  # no tabulate in it
    try:
        with pytest.raises(BuildFailed, match="requirements.lock does not hold the dependencies"):
            list(build(request(prefix, setup_repo, "project-setup-locked"), engine))
    finally:
        (setup_repo / LOCK_FILE).unlink()
    left = subprocess.run([engine.cli, "image", "ls", "-q", f"{prefix}-project-setup-locked"],
                          capture_output=True, text=True, check=True).stdout
    assert left == "", "a failed build left an image"


def test_a_committed_lock_with_the_setup_py_dependencies_builds(engine, prefix, setup_repo, setup_built):
    (setup_repo / LOCK_FILE).write_text(engine.read_file(setup_built[0].image, LOCK_PATH))
    try:
        built, _ = build_all(request(prefix, setup_repo, "project-setup-relocked"), engine)
    finally:
        (setup_repo / LOCK_FILE).unlink()
    assert built.lock_origin == f"from the committed lock {LOCK_FILE}"
    lock = parse_lock(engine.read_file(setup_built[0].image, LOCK_PATH))
    assert parse_installed(engine.read_file(built.image, INSTALLED_PATH))["tabulate"] == lock["tabulate"]
