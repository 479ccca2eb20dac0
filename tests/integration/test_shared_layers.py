"""Layers that nodes share, on the real engine: the JupyterLab layer (and every layer
before it) is the same bytes in two builds from scratch, and in two repositories on the
same base, one of which has apt.txt (so the JupyterLab layer comes before it)."""

from __future__ import annotations

import pytest

from benchmarks.layers import image_layers, second_image
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource

from .conftest import build_all, docker_run

pytestmark = pytest.mark.docker


def request(prefix, path, name, **kw) -> BuildRequest:
    return BuildRequest(source=LocalSource(path), host=read_host_settings(), name=f"{prefix}-{name}", **kw)


def shared_prefix(layers) -> list:
    """The layers up to and including the JupyterLab step."""
    jupyter = next(i for i, layer in enumerate(layers) if "uv pip install jupyterlab==" in layer.created_by)
    return layers[:jupyter + 1]


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    one, two = root / "one", root / "two"
    one.mkdir()
    (one / "requirements.txt").write_text("idna\n")
    two.mkdir()
    (two / "requirements.txt").write_text("six\n")
    (two / "apt.txt").write_text("jq\n")
    return one, two


@pytest.fixture(scope="module")
def images(engine, prefix, repos):
    one, two = repos
    first, _ = build_all(request(prefix, one, "shared-one"), engine)
    cold, _ = build_all(request(prefix, one, "shared-cold", no_cache=True), engine)  # no layer cache at all
    other, _ = build_all(request(prefix, two, "shared-two"), engine)
    return {name: (built.image, image_layers(engine.cli, built.image)) for name, built in
            (("first", first), ("cold", cold), ("other", other))}


def test_two_builds_from_scratch_make_the_same_jupyter_layer(images):
    first, cold = images["first"][1], images["cold"][1]
    assert [layer.diff_id for layer in shared_prefix(cold)] == [layer.diff_id for layer in shared_prefix(first)]
    assert shared_prefix(first)[-1].size > 100_000_000  # JupyterLab and JupyterHub are in it


def test_a_second_repository_moves_only_its_own_layers(images, engine):
    first, other = images["first"][1], images["other"][1]
    shared = shared_prefix(other)
    assert [layer.diff_id for layer in shared] == [layer.diff_id for layer in shared_prefix(first)]
    result = second_image(first, other)
    assert result.shared_layers >= len(shared)
    assert result.moved < result.total - sum(layer.size for layer in shared) + 1
    # apt.txt's packages are in a layer after JupyterLab's, and they work
    assert docker_run(engine, images["other"][0], "jq", "--version").startswith("jq-")


def test_the_images_bytecode_is_used_as_it_is(images, engine):
    """Hash-based bytecode stays valid with the fixed file times: importing JupyterLab,
    the kernel and the single-user server writes no bytecode in a new container."""
    out = docker_run(engine, images["cold"][0], "bash", "-c",
                     "touch /tmp/t0 && python -c 'import jupyterlab.labapp, ipykernel.kernelapp, jupyterhub.singleuser' "
                     "&& find /srv/dsbuild/venv -name '*.pyc' -newer /tmp/t0 | wc -l")
    assert out.strip() == "0"
