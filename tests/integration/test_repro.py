"""Reproducibility on the real engine and a real registry: the lock, --locked, --as-of,
push and skip, provenance labels and diff."""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner
from packaging.utils import canonicalize_name

from dsbuild.builder.errors import BuildFailed, ConfigError
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_PATH, lock_digest, parse_lock
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.progress import StepStarted
from dsbuild.builder.registry import manifest_exists
from dsbuild.builder.names import LOCK_LABEL
from dsbuild.builder.render import render_dockerfile
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource
from dsbuild.cli import main
from tests.conftest import EXAMPLES

from .conftest import build_all, docker_run, plain_tag
from .registry import REGISTRY_BIN, local_registry, refusing_registry

pytestmark = pytest.mark.docker


def request(prefix, path, name, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


def installed(engine, image) -> dict[str, str]:
    out = docker_run(engine, image, "pip", "list", "--format=freeze", "--disable-pip-version-check")
    return {canonicalize_name(n): v for n, v in (line.split("==") for line in out.split())}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("repro") / "sketches"
    shutil.copytree(EXAMPLES / "sketches", path)
    return path


@pytest.fixture(scope="module")
def first(engine, prefix, repo):
    built, _ = build_all(request(prefix, repo, "repro"), engine)
    return built


def test_lock_lists_every_installed_package_and_its_digest_is_labelled(engine, first):
    lock = engine.read_file(first.image, LOCK_PATH)
    pins = parse_lock(lock)
    assert pins == installed(engine, first.image)
    assert {"numpy", "matplotlib", "jupyterlab", "jupyterhub", "pip"} <= pins.keys()
    assert "--hash=sha256:" in lock
    assert engine.image_labels(first.image)[LOCK_LABEL] == lock_digest(lock)


def test_locked_rebuild_without_cache_installs_the_same_set(engine, prefix, repo, first):
    result = CliRunner().invoke(main, ["lock", first.image, "-o", str(repo / "requirements.lock")])
    assert result.exit_code == 0, result.output
    locked, _ = build_all(request(prefix, repo, "repro-locked", options=BuildOptions(locked=True), no_cache=True), engine)
    assert locked.plan.locked
    assert installed(engine, locked.image) == installed(engine, first.image)
    (repo / "requirements.lock").unlink()


def test_locked_refuses_a_lock_that_does_not_match(engine, prefix, repo, first, tmp_path):
    other = tmp_path / "r"
    shutil.copytree(repo, other)
    (other / "requirements.lock").write_text(engine.read_file(first.image, LOCK_PATH))
    (other / "requirements.txt").write_text("numpy<1\nmatplotlib\n")
    with pytest.raises(ConfigError, match=r"requirements.lock does not match requirements.txt: numpy<1 but the lock has numpy=="):
        build_all(request(prefix, other, "repro-mismatch", options=BuildOptions(locked=True)), engine)


def test_as_of_resolves_as_on_that_date(engine, prefix, tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    built, _ = build_all(request(prefix, tmp_path, "asof", options=BuildOptions(as_of="2024-01-01")), engine)
    pins = parse_lock(engine.read_file(built.image, LOCK_PATH))
    assert pins["numpy"] == "1.26.2"  # 1.26.3 came out on 2024-01-02
    assert pins["jupyterlab"].startswith("4.0.")
    assert installed(engine, built.image)["numpy"] == "1.26.2"


def test_diff_reports_an_added_package(engine, prefix, repo, first, tmp_path):
    other = tmp_path / "plus"
    shutil.copytree(repo, other)
    with open(other / "requirements.txt", "a") as handle:
        handle.write("tabulate==0.9.0\n")
    second, _ = build_all(request(prefix, other, "repro-plus"), engine)
    result = CliRunner().invoke(main, ["diff", first.image, second.image])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["+ tabulate==0.9.0"]


@pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="Debian's docker-registry is not installed (scripts/setup.sh installs it)")
def test_push_then_the_registry_copy_skips_the_build(engine, prefix, repo, first):
    with local_registry() as registry:
        name = f"{prefix}-pushed"
        pushed, _ = build_all(request(prefix, repo, "pushed", registry=registry, push=True), engine)
        try:
            assert pushed.image == f"{registry.host}/{name}:{plain_tag(first.resolved.tag)}"
            assert manifest_exists(registry, name, plain_tag(first.resolved.tag))
            assert not manifest_exists(registry, name, "no-such-tag")
            engine.remove_image(pushed.image)  # gone from the engine: only the registry has it
            again, events = build_all(request(prefix, repo, "pushed", registry=registry), engine)
            assert again.skipped and again.image == pushed.image
            assert not any(isinstance(e, StepStarted) for e in events)
            assert engine.inspect_image(pushed.image) is None  # skipped without pulling
        finally:
            engine.remove_image(pushed.image)


def test_a_refused_push_fails_in_one_line_and_leaves_no_tag(engine, prefix, repo, first):
    """`dsbuild build --push` to a registry that refuses: a failed build's exit code, one line, no new tag."""
    with refusing_registry() as registry:
        name = f"{prefix}-refused"
        ref = f"{registry.host}/{name}:{plain_tag(first.resolved.tag)}"
        result = CliRunner().invoke(main, ["build", str(repo), "--image-name", name, "--registry", registry.host,
                                           "--push", "--quiet"])
        try:
            assert result.exit_code == BuildFailed.exit_code, result.output
            errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
            assert errors == [f"Error: pushing {ref} failed: denied: pushes are refused here"], result.stderr
            assert "Traceback" not in result.output
            assert engine.inspect_image(ref) is None
        finally:
            engine.remove_image(ref)


def test_two_repositories_with_one_environment_share_the_dependency_layers(engine, prefix, repo, first, tmp_path):
    other = tmp_path / "another-project"
    other.mkdir()
    shutil.copy(repo / "requirements.txt", other / "requirements.txt")
    (other / "analysis.py").write_text(f"# a different project {os.urandom(8).hex()}\n")
    second, _ = build_all(request(prefix, other, "another-project"), engine)
    phases = dict(enumerate(render_dockerfile(second.plan).phases, 1))
    assert [phases[s] for s in second.run_steps] == ["repository"]
    labels = engine.image_labels(second.image)
    assert labels["io.dsbuild.environment-hash"] == engine.image_labels(first.image)["io.dsbuild.environment-hash"]
    assert labels[LOCK_LABEL] == engine.image_labels(first.image)[LOCK_LABEL]
