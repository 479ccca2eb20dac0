"""A committed requirements.lock on the real engine: it wins over newer releases, it
pins apt.txt's Debian versions, `show` tells what was installed outside it, and
`verify` rebuilds from it (and catches an apt version that cannot be had again).
Five builds, one at a time; everything is named under the session's prefix."""

from __future__ import annotations

import subprocess
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from dsbuild.builder.envlock import APT_LOCK_PATH, INSTALLED_PATH, apt_section, parse_apt_lock, parse_installed
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_PATH, parse_lock
from dsbuild.builder.names import LOCK_ORIGIN_LABEL
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.service import BuildRequest, build
from dsbuild.builder.source import LocalSource
from dsbuild.cli import main
from dsbuild.launch.events import from_builder
from dsbuild.launch.preflight import Preflight
from dsbuild.launch.routes import parse_launch
from tests.launch.conftest import config, make_repo

from .conftest import build_all

pytestmark = pytest.mark.docker
AS_OF = "2024-01-01"  # numpy 1.26.2 then; 1.26.3 came out on 2024-01-02, and much newer since


def request(prefix, path, name, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("committed") / "project"
    (path / "binder").mkdir(parents=True)
    (path / "binder" / "requirements.txt").write_text("numpy\n")
    (path / "binder" / "apt.txt").write_text("jq\n")
    (path / "binder" / "postBuild").write_text("#!/bin/bash\nset -e\npip install --no-deps tabulate==0.9.0\n")
    return path


@pytest.fixture(scope="module")
def old(engine, prefix, repo):
    """An image resolved as of 2024, whose lock the repository then commits."""
    built, _ = build_all(request(prefix, repo, "committed-old", options=BuildOptions(as_of=AS_OF)), engine)
    result = CliRunner().invoke(main, ["lock", built.image, "-o", str(repo / "binder" / "requirements.lock")])
    assert result.exit_code == 0, result.output
    return built


@pytest.fixture(scope="module")
def locked(engine, prefix, repo, old):
    """A plain build (no option at all) of the repository that now holds the lock."""
    built, _ = build_all(request(prefix, repo, "committed"), engine)
    return built


def test_the_committed_lock_wins_over_newer_releases(engine, repo, old, locked):
    lock = (repo / "binder" / "requirements.lock").read_text()
    assert parse_lock(lock)["numpy"] == "1.26.2"
    assert locked.plan.locked and locked.lock_origin == "from the committed lock binder/requirements.lock"
    assert engine.image_labels(locked.image)[LOCK_ORIGIN_LABEL] == locked.lock_origin
    assert engine.image_labels(old.image)[LOCK_ORIGIN_LABEL] == f"resolved as of {AS_OF}"
    assert parse_lock(engine.read_file(locked.image, LOCK_PATH)) == parse_lock(lock)
    present = parse_installed(engine.read_file(locked.image, INSTALLED_PATH))
    assert present["numpy"] == "1.26.2" and present["jupyterlab"] == parse_lock(lock)["jupyterlab"]
    # the Debian packages too: the lock recorded jq's version, and the build installed exactly it
    assert "jq" in apt_section(lock)
    assert parse_apt_lock(engine.read_file(locked.image, APT_LOCK_PATH)) == apt_section(lock)


def test_a_launch_link_gets_the_committed_lock(engine, prefix, repo, old, tmp_path, monkeypatch):
    """The launch service's own path: link -> preflight -> build, with no option to pass."""
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    files = {f"binder/{p.name}": p.read_text() for p in (repo / "binder").iterdir()}
    url = make_repo(tmp_path / "shared", files)
    preflight = Preflight(config(image_prefix=f"{prefix}-launch"), engine)
    checked = preflight.check(parse_launch(f"git/{quote(url, safe='')}/main", {}, ("file",)))
    events = list(build(preflight.build_request(checked), engine, preflight.workspace))
    built = events[-1]
    assert built.lock_origin == "from the committed lock binder/requirements.lock"
    assert parse_lock(engine.read_file(built.image, LOCK_PATH))["numpy"] == "1.26.2"
    shown = [from_builder(e).message for e in events if from_builder(e) is not None]
    assert "packages: from the committed lock binder/requirements.lock" in shown
    assert shown[-1].endswith("; packages from the committed lock binder/requirements.lock")


def test_show_tells_the_origin_and_what_postbuild_installed_outside_the_lock(locked):
    result = CliRunner().invoke(main, ["show", locked.image])
    assert result.exit_code == 0, result.output
    assert "packages: from the committed lock binder/requirements.lock" in result.output
    assert "installed outside the lock: 1" in result.output and "tabulate" in result.output


def test_verify_rebuilds_from_the_lock_without_cache_and_finds_no_difference(locked):
    result = CliRunner().invoke(main, ["verify", locked.image])
    assert result.exit_code == 0, result.output
    assert "same packages" in result.output


def test_verify_catches_an_apt_version_that_differs(engine, prefix, locked, tmp_path):
    """An image whose record says another jq version than the archive has now."""
    apt = engine.read_file(locked.image, APT_LOCK_PATH)
    jq = parse_apt_lock(apt)["jq"]
    (tmp_path / "apt.lock").write_text(apt.replace(f"jq={jq}", "jq=1.5+dfsg-2"))
    (tmp_path / "Dockerfile").write_text(f"FROM {locked.image}\nCOPY apt.lock {APT_LOCK_PATH}\n")
    tampered = f"{prefix}-committed-apt:1"
    done = subprocess.run([engine.cli, "build", "-q", "-t", tampered, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = CliRunner().invoke(main, ["verify", tampered])
    assert result.exit_code == 1, result.output
    assert "cannot be reproduced" in result.output and "'1.5+dfsg-2' for 'jq' was not found" in result.output
