"""The BuildKit engine's pure parts: image references, the buildctl command line and
buildkitd's configuration."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dsbuild.builder.buildkit import BuildKitEngine, buildkitd_config
from dsbuild.builder.errors import ConfigError, SourceError
from dsbuild.builder.registry import Registry
from dsbuild.builder.registry_images import ImageRef

DIGEST = "sha256:" + "ab" * 32


def test_image_references_by_tag_and_by_digest():
    by_tag = ImageRef.parse("127.0.0.1:5000/dsbuild-repo-1a2b:0123abcd")
    assert (by_tag.registry.host, by_tag.name, by_tag.reference) == ("127.0.0.1:5000", "dsbuild-repo-1a2b", "0123abcd")
    by_digest = ImageRef.parse(f"localhost:5000/team/repo@{DIGEST}")
    assert by_digest.name == "team/repo" and str(by_digest) == f"localhost:5000/team/repo@{DIGEST}"
    assert str(by_tag.with_reference(DIGEST)) == f"127.0.0.1:5000/dsbuild-repo-1a2b@{DIGEST}"
    for bad in ("repo:tag", "localhost:5000/Repo:tag", "localhost:5000/repo@sha256:short", "h/../x:t"):
        with pytest.raises(SourceError):
            ImageRef.parse(bad)


def test_buildctl_builds_the_dockerfile_with_secret_labels_base_and_pushes_by_digest(tmp_path):
    engine = BuildKitEngine("tcp://10.0.0.5:1234", Registry("localhost:5000"), cli="/bin/buildctl",
                            pull_registry="10.123.0.1:5000")
    args = engine.build_args(tmp_path, tmp_path / ".dsbuild" / "Dockerfile", "10.123.0.1:5000/dsbuild-x",
                             {"io.dsbuild.source-hash": "abc def"}, True, {"dsbuild-index": Path("/p/s")},
                             "dsbuild-base:bookworm", tmp_path / "m.json")
    assert args[:5] == ["/bin/buildctl", "--addr", "tcp://10.0.0.5:1234", "build", "--frontend"]
    assert f"context={tmp_path}" in args and f"dockerfile={tmp_path / '.dsbuild'}" in args
    assert "filename=Dockerfile" in args
    assert "type=image,name=10.123.0.1:5000/dsbuild-x,push=true,push-by-digest=true" in args
    assert "--opt=label:io.dsbuild.source-hash=abc def" in args
    assert "--secret=id=dsbuild-index,src=/p/s" in args and "--no-cache" in args
    assert "--opt=context:dsbuild-base:bookworm=docker-image://10.123.0.1:5000/dsbuild-base:bookworm" in args


def test_buildkitd_config_is_valid_toml_and_refuses_odd_values():
    data = tomllib.loads(buildkitd_config("/var/lib/buildkit", ["unix:///run/b.sock"], ["localhost:5000"],
                                          "bk1", "10.160.0.0/24"))
    assert data["grpc"]["address"] == ["unix:///run/b.sock"]
    assert data["worker"]["oci"]["bridgeName"] == "bk1" and data["worker"]["containerd"]["enabled"] is False
    assert data["registry"]["localhost:5000"]["http"] is True
    with pytest.raises(ConfigError):
        buildkitd_config("/r", [], ['evil"]\n[x'])
