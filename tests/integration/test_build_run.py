"""Real builds on the real Docker engine: every example, the notebook inside its image,
JupyterLab answering, and failures that leave no image behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
import uuid

import pytest

from dsbuild.builder.errors import BuildFailed
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.render import render_dockerfile
from dsbuild.builder.run import RunOptions, start_server
from dsbuild.builder.service import BuildRequest, Status
from dsbuild.builder.source import LocalSource
from tests.conftest import EXAMPLES, ROOT

from .conftest import build_all, docker_run, plain_tag, run_sketches_notebook

pytestmark = pytest.mark.docker


def request(prefix, path, name, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


@pytest.fixture(scope="module")
def sketches(engine, prefix):
    built, _ = build_all(request(prefix, EXAMPLES / "sketches", "sketches"), engine)
    return built


def test_image_is_tagged_and_labelled(engine, sketches, prefix):
    assert sketches.image == f"{prefix}-sketches:{plain_tag(sketches.resolved.tag)}"
    labels = engine.image_labels(sketches.image)
    assert labels["org.opencontainers.image.source"] == str(EXAMPLES / "sketches")
    assert labels["org.opencontainers.image.revision"] == sketches.resolved.content_id
    assert labels["io.dsbuild.environment-hash"] == sketches.plan.environment_hash
    assert labels["io.dsbuild.pieces"] == "requirements.txt"
    user = docker_run(engine, sketches.image, "id", "-u")
    assert user.strip() == "1000"


def test_notebook_runs_inside_its_image(engine, sketches):
    run_sketches_notebook(engine, sketches.image)


def test_same_content_is_not_built_again(engine, sketches, prefix):
    again, events = build_all(request(prefix, EXAMPLES / "sketches", "sketches"), engine)
    assert again.skipped and again.image == sketches.image and again.image_id == sketches.image_id
    assert any(isinstance(e, Status) and e.phase == "skipped" for e in events)


def test_jupyterlab_answers_and_the_container_is_removed(engine, sketches):
    server = start_server(engine, sketches.image, RunOptions())
    try:
        with urllib.request.urlopen(urllib.request.Request(f"{server.api}/api/status", headers={"Authorization": f"token {server.token}"})) as r:
            assert r.status == 200 and "started" in json.load(r)
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{server.api}/api/contents")
        assert denied.value.code == 403
    finally:
        engine.remove_container(server.container)
    assert engine.container_state(server.container) is None


def test_apt_postbuild_and_start(engine, prefix):
    built, _ = build_all(request(prefix, EXAMPLES / "apt-postbuild", "apt-postbuild"), engine)
    out = docker_run(engine, built.image, "bash", "-c", 'echo "$GREETING"; cat ~/.postbuild-marker; jq --version')
    assert out.splitlines() == ["hello from start", "postBuild", "jq-1.6"]


def test_binder_folder_and_runtime(engine, prefix):
    built, _ = build_all(request(prefix, EXAMPLES / "binder-runtime", "binder-runtime"), engine)
    out = docker_run(engine, built.image, "python", "-c", "import sys, pandas; print(sys.version_info[:2], pandas.__name__)")
    assert out.strip() == "(3, 11) pandas"


def test_installable_project_is_installed_editable(engine, prefix):
    built, _ = build_all(request(prefix, EXAMPLES / "setup-py", "setup-py"), engine)
    out = docker_run(engine, built.image, "python", "-c", "import tinystats; print(tinystats.mean([1, 2, 3]), tinystats.__file__)")
    assert out.strip() == "2.0 /home/jovyan/src/tinystats/__init__.py"


def test_code_only_change_reruns_only_the_repository_copy(engine, prefix, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "sketches", repo)
    first, _ = build_all(request(prefix, repo, "code-change"), engine)
    (repo / "analysis.py").write_text(f"print('new code {uuid.uuid4()}')\n")  # never seen by the cache
    second, _ = build_all(request(prefix, repo, "code-change"), engine)
    assert second.image != first.image
    phases = dict(enumerate(render_dockerfile(second.plan).phases, start=1))
    assert [phases[s] for s in second.run_steps] == ["repository"]  # no container runs (the record comes before)
    assert {"dependencies", "record"} <= {phases[s] for s in second.cached_steps}


def test_test_suites_are_trimmed_and_the_record_still_lists_every_package(engine, sketches):
    """numpy and matplotlib ship test suites; the image has none of them, and they still import."""
    out = docker_run(engine, sketches.image, "python", "-c",
                     "import os, numpy, matplotlib, tornado, jupyter_server; "
                     "print(sum(os.path.isdir(os.path.join(os.path.dirname(m.__file__), 'tests')) "
                     "for m in (numpy, matplotlib, jupyter_server)))")
    assert out.strip() == "0"
    installed = docker_run(engine, sketches.image, "cat", "/var/lib/dsbuild/installed.txt").split()
    assert any(name.startswith("numpy-") for name in installed) and any(name.startswith("jupyterlab-") for name in installed)


def _tags(engine, name):
    return subprocess.run([engine.cli, "image", "ls", "-q", name], capture_output=True, text=True).stdout.split()


def test_broken_requirements_fail_clearly_and_tag_nothing(engine, prefix, tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\nno-such-package-dsbuild-test==1.0\n")
    with pytest.raises(BuildFailed) as err:
        build_all(request(prefix, tmp_path, "broken-req"), engine)
    assert str(err.value).startswith("installing the Python packages failed (exit code 1)")
    assert "no-such-package-dsbuild-test" in str(err.value)
    assert _tags(engine, f"{prefix}-broken-req") == []


def test_failing_post_build_reports_exit_code_and_tags_nothing(engine, prefix, tmp_path):
    (tmp_path / "postBuild").write_text("#!/bin/bash\necho preparing data\necho 'data file missing'\nexit 7\n")
    with pytest.raises(BuildFailed) as err:
        build_all(request(prefix, tmp_path, "broken-postbuild"), engine)
    assert str(err.value) == "postBuild failed (exit code 7); its last line: data file missing"
    assert _tags(engine, f"{prefix}-broken-postbuild") == []


def test_cli_run_detached_prints_a_working_url(engine, prefix):
    dsbuild = shutil.which("dsbuild") or str(ROOT / ".venv/bin/dsbuild")
    done = subprocess.run(
        [dsbuild, "run", "-q", "--detach", str(EXAMPLES / "sketches"), "--image-name", f"{prefix}-sketches"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    container = done.stderr.split("docker rm -f ")[-1].strip()
    try:
        assert url.startswith("http://127.0.0.1:") and "/lab?token=" in url
        with urllib.request.urlopen(url) as response:
            assert response.status == 200 and b"JupyterLab" in response.read()
    finally:
        subprocess.run([engine.cli, "rm", "-f", container], capture_output=True)


def test_git_source_is_tagged_by_the_resolved_commit(engine, prefix, tmp_path):
    from dsbuild.builder.source import parse_source

    repo = tmp_path / "origin"
    shutil.copytree(EXAMPLES / "sketches", repo)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "one"], ["tag", "v1"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    built, events = build_all(
        BuildRequest(source=parse_source(repo.as_uri(), "v1"), host=read_host_settings(), name=f"{prefix}-git"), engine
    )
    assert built.image == f"{prefix}-git:{plain_tag(sha[:12])}"
    assert any(isinstance(e, Status) and e.message == f"commit {sha}" for e in events)
    labels = engine.image_labels(built.image)
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == repo.as_uri()
    assert labels["io.dsbuild.ref"] == "v1"


def test_own_dockerfile_is_built_as_it_is(engine, prefix, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM dsbuild-base:bookworm\nCOPY hello.txt /hello.txt\n")
    (tmp_path / "hello.txt").write_text("from the repository's Dockerfile\n")
    (tmp_path / "requirements.txt").write_text("ignored-because-of-the-dockerfile==1\n")
    built, _ = build_all(request(prefix, tmp_path, "own-dockerfile"), engine)
    assert built.plan.pieces == ("Dockerfile",)
    assert docker_run(engine, built.image, "cat", "/hello.txt") == "from the repository's Dockerfile\n"
    assert engine.image_labels(built.image)["io.dsbuild.pieces"] == "Dockerfile"
