"""The Binder conventions on the real engine: each repository under tests/repos/ is built
once and checked inside its image by its own `verify` script (as repo2docker's test
repositories are). Three builds in all; the bullseye and trixie bases are built on first
use (about 2-3 minutes each on a fresh machine) and then stay cached as images."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dsbuild.builder.errors import BuildFailed, ConfigError
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.plan import BuildOptions, NotebookUser
from dsbuild.builder.service import BuildRequest, Status
from dsbuild.builder.source import LocalSource
from tests.conftest import ROOT

from .conftest import build_all, docker_run

pytestmark = pytest.mark.docker
REPOS = ROOT / "tests" / "repos"


def request(prefix, path: Path, name: str, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


def notes(events) -> list[str]:
    return [e.message for e in events if isinstance(e, Status) and e.phase == "planning"]


@pytest.fixture(scope="module")
def py39(engine, prefix):
    """--subdir, Pipfile python_version 3.9 (bullseye), --user-id/--user-name."""
    options = BuildOptions(user=NotebookUser(1234, "alice"))
    return build_all(request(prefix, REPOS, "py39", subdir="py39-pipfile", options=options), engine)


@pytest.fixture(scope="module")
def envyml(engine, prefix):
    return build_all(request(prefix, REPOS / "envyml-node", "envyml"), engine)


@pytest.fixture(scope="module")
def trixie(engine, prefix):
    return build_all(request(prefix, REPOS / "pipfile-trixie", "trixie"), engine)


def test_subdir_pipfile_python_39_and_user(engine, py39, tmp_path):
    built, events = py39
    assert docker_run(engine, built.image, "./verify").strip().endswith("verified")
    labels = engine.image_labels(built.image)
    assert labels["io.dsbuild.base-image"] == "dsbuild-base:bullseye" and labels["io.dsbuild.python"] == "3.9"
    assert labels["io.dsbuild.python-requested"] == "3.9 (Pipfile)" and labels["io.dsbuild.subdir"] == "py39-pipfile"
    assert "base image dsbuild-base:bullseye, picked for the Python the repository asks for" in notes(events)
    shown = subprocess.run([str(Path(sys.executable).parent / "dsbuild"), "show", built.image], capture_output=True, text=True)
    assert shown.returncode == 0 and re.search(r"io\.dsbuild\.python-requested[\s│|]+3\.9 \(Pipfile\)", shown.stdout), shown.stdout
    # A host folder owned by the same uid is written with that owner.
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 1234, 1234)
    docker_run(engine, built.image, "touch", "/home/alice/data/made-inside", volumes=(f"{data}:/home/alice/data",))
    assert (data / "made-inside").stat().st_uid == 1234


def test_environment_yml_node_and_user_tools(engine, envyml):
    built, events = envyml
    assert docker_run(engine, built.image, "./verify").strip().endswith("verified")
    labels = engine.image_labels(built.image)
    assert labels["io.dsbuild.environment"] == "environment.yml rendered with PyPI packages (no conda)"
    assert labels["io.dsbuild.python"] == "3.11" and labels["io.dsbuild.python-requested"] == "3.10 (environment.yml)"
    warnings = [n for n in notes(events) if n.startswith("warning:")]
    assert len(warnings) == 1 and "Python 3.10 (environment.yml) was asked for; building with Python 3.11" in warnings[0]
    assert "environment.yml: conda channels ignored: conda-forge, defaults" in notes(events)


def test_pipfile_in_binder_folder_on_trixie(engine, trixie):
    built, _ = trixie
    assert docker_run(engine, built.image, "./verify").strip().endswith("verified")
    labels = engine.image_labels(built.image)
    assert labels["io.dsbuild.base-image"] == "dsbuild-base:trixie" and labels["io.dsbuild.python"] == "3.13"


def test_pip_and_uv_work_in_a_running_notebook(engine, envyml):
    """Same index and CA as the build (the network is on); the image holds no credentials."""
    built, _ = envyml
    script = (
        "set -e; grep -q '^cert = /srv/dsbuild/ca-certificates.crt' /etc/pip.conf; ! grep -q '@' /etc/pip.conf /etc/uv/uv.toml; "
        "pip install -q --user --no-deps iniconfig==2.0.0; python -c 'import iniconfig'; "
        "uv pip install -q --no-deps tomli==2.0.1; python -c 'import tomli'; echo installed"
    )
    done = subprocess.run([engine.cli, "run", "--rm", built.image, "bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "installed", done.stderr[-1500:]


def test_cli_run_command_env_and_exit_code(engine, envyml, prefix):
    """`dsbuild run REPO -- CMD`: the image is reused, the command's output and exit code come back."""
    cli = [str(Path(sys.executable).parent / "dsbuild"), "run", str(REPOS / "envyml-node"), "--image-name", f"{prefix}-envyml", "-q"]
    done = subprocess.run(
        [*cli, "--env", "GREETING=hello there", "--", "bash", "-c", 'echo "$GREETING from $(python -V)"; exit 7'],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 7, done.stderr[-1500:]
    assert re.fullmatch(r"hello there from Python 3\.11\.\d+", done.stdout.strip()), done.stdout


def test_uv_managed_python_without_the_download_fails_in_one_line(engine, prefix, tmp_path):
    (tmp_path / "runtime.txt").write_text("python-3.10\n")
    req = request(prefix, tmp_path, "managed", options=BuildOptions(python_downloads=True))
    with pytest.raises(BuildFailed) as err:
        build_all(req, engine)
    assert str(err.value).startswith("installing a uv-managed Python failed")
    assert "--python-downloads needs uv's Python download" in str(err.value) and "\n" not in str(err.value)
    left = subprocess.run([engine.cli, "image", "ls", "-q", f"{prefix}-managed"], capture_output=True, text=True).stdout
    assert left.strip() == ""


def test_exact_python_refuses_before_building(engine, prefix, tmp_path):
    (tmp_path / "runtime.txt").write_text("python-3.10\n")
    req = request(prefix, tmp_path, "exact", options=BuildOptions(exact_python=True))
    with pytest.raises(ConfigError, match=r"Python 3\.10 \(runtime.txt\) was asked for.*--exact-python is set"):
        build_all(req, engine)
