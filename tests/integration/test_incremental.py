"""The incremental dependency layer on the real engine: a package added, then removed,
each installed on top of the previous image, has exactly the package set and the files
of a full build of the same repository (`dsbuild diff` empty, the same installed
distributions, the same home), the notebook runs, and the labels say what happened."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

from dsbuild.builder.envlock import INSTALLED_PATH
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_PATH, lock_digest, parse_lock
from dsbuild.builder.names import INCREMENT_LABEL, INCREMENTAL_FROM_LABEL, LOCK_LABEL
from dsbuild.builder.service import BuildRequest, Status
from dsbuild.builder.source import LocalSource
from dsbuild.cli import main
from tests.conftest import EXAMPLES

from .conftest import build_all, docker_run, run_sketches_notebook

pytestmark = pytest.mark.docker

ADDED = "tabulate==0.9.0\n"
HOME_LISTING = "cd /home/jovyan && find . -printf '%p %u:%g %m %s %l\\n' | sort"
# The files a build writes besides the home: the environment, dsbuild's records, the temporary folders.
# Bytecode is left out: it is a cache of what the build's import probe loaded (builder/bytecode.py), so an
# environment that once imported a package keeps bytecode of what that package imported (tabulate imports
# wcwidth), which a full build without it does not compile. Every other file is compared.
FILES_LISTING = ("find /srv/dsbuild /var/lib/dsbuild /tmp /var/tmp -name __pycache__ -prune"
                 " -o -printf '%p %u:%g %m %s %l\\n' | sort")


def request(prefix, path, name, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


def layers(engine, image) -> list[str]:
    return engine.inspect_image(image)["RootFS"]["Layers"]


def assert_same_environment(engine, incremental, full) -> None:
    """`dsbuild diff` says nothing, and the same distributions are installed (their record)."""
    result = CliRunner().invoke(main, ["diff", incremental, full])
    assert result.exit_code == 0 and result.stdout == "" and "same packages" in result.output, result.output
    installed = engine.read_file(incremental, INSTALLED_PATH)
    assert installed and installed == engine.read_file(full, INSTALLED_PATH)


def test_a_package_added_then_removed_is_installed_on_top_and_matches_a_full_build(engine, prefix, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "sketches", repo)
    requirements = (repo / "requirements.txt").read_text()
    (repo / "old-notes.txt").write_text("only in the first commit\n")
    first, _ = build_all(request(prefix, repo, "incr"), engine)

    (repo / "old-notes.txt").unlink()
    (repo / ".bashrc").write_text("echo a repository's own bashrc\n")  # over the one /etc/skel put there
    (repo / "requirements.txt").write_text(requirements + ADDED)
    added, events = build_all(request(prefix, repo, "incr"), engine)
    assert added.built_upon == first.image
    said = [e.message for e in events if isinstance(e, Status) and e.phase == "planning"]
    assert any(m.startswith(f"incremental: installing only the difference on top of {first.image}") for m in said)
    assert layers(engine, added.image)[: len(layers(engine, first.image))] == layers(engine, first.image)
    labels = engine.image_labels(added.image)
    assert labels[INCREMENT_LABEL] == "1" and labels[INCREMENTAL_FROM_LABEL].startswith(first.image + "@sha256:")
    lock = engine.read_file(added.image, LOCK_PATH)
    assert labels[LOCK_LABEL] == lock_digest(lock)  # the full lock, not the difference
    assert {"numpy", "matplotlib", "tabulate", "jupyterlab"} <= set(parse_lock(lock))

    full, events = build_all(request(prefix, repo, "incr-full", max_increments=0), engine)
    assert full.built_upon == "" and INCREMENT_LABEL not in engine.image_labels(full.image)
    assert_same_environment(engine, added.image, full.image)
    for listing in (HOME_LISTING, FILES_LISTING):
        assert docker_run(engine, added.image, "bash", "-c", listing) == docker_run(engine, full.image, "bash", "-c", listing)
    run_sketches_notebook(engine, added.image)

    (repo / "requirements.txt").write_text(requirements)
    (repo / ".bashrc").unlink()
    (repo / "new-notes.txt").write_text("the third commit\n")
    removed, _ = build_all(request(prefix, repo, "incr"), engine)
    assert removed.built_upon == added.image and engine.image_labels(removed.image)[INCREMENT_LABEL] == "2"
    assert "tabulate" not in parse_lock(engine.read_file(removed.image, LOCK_PATH))
    assert_same_environment(engine, removed.image, first.image)
    assert docker_run(engine, removed.image, "bash", "-c", FILES_LISTING) == docker_run(engine, first.image, "bash", "-c", FILES_LISTING)
    home = docker_run(engine, removed.image, "bash", "-c", HOME_LISTING)
    assert "./new-notes.txt" in home and "./old-notes.txt" not in home
    skel = subprocess.run([engine.cli, "run", "--rm", "--network=none", removed.image, "cat", ".bashrc", "/etc/skel/.bashrc"],
                          capture_output=True, text=True, timeout=120).stdout
    assert "a repository's own bashrc" not in skel  # /etc/skel's copy is back
    run_sketches_notebook(engine, removed.image)

    (repo / "requirements.txt").write_text(requirements + ADDED)
    bounded, events = build_all(request(prefix, repo, "incr", max_increments=2), engine)
    assert bounded.built_upon == "" and INCREMENT_LABEL not in engine.image_labels(bounded.image)
    assert any("2 increments from a full build (--max-increments 2)" in e.message for e in events if isinstance(e, Status))
    assert_same_environment(engine, bounded.image, full.image)
