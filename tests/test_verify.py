"""`dsbuild verify`: which source and options the rebuild uses (the build itself is in
tests/integration/test_committed_lock.py)."""

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.names import BASE_IMAGE_LABEL, OCI_REVISION, OCI_SOURCE, SUBDIR_LABEL
from dsbuild.builder.source import GitSource, LocalSource
from dsbuild.cli.verify_commands import source_of, verify_request

LOCK = "numpy==1.26.4\n# dsbuild-apt: jq=1.6-2.1\n"


def test_the_rebuild_uses_the_images_source_commit_and_whole_lock(tmp_path):
    labels = {OCI_SOURCE: "https://git.example/a/b", OCI_REVISION: "a" * 40, BASE_IMAGE_LABEL: "dsbuild-base:bookworm",
              SUBDIR_LABEL: "docs"}
    request = verify_request("reg:5000/dsbuild-b:aaaa", labels, LOCK)
    assert request.source == GitSource("https://git.example/a/b", "a" * 40)
    assert request.name == "reg:5000/dsbuild-b" and request.force and request.no_cache and request.subdir == "docs"
    assert request.options.from_lock == LOCK and request.options.base_image == "dsbuild-base:bookworm"
    folder = source_of({OCI_SOURCE: str(tmp_path), OCI_REVISION: "src-0123456789ab"})
    assert folder == LocalSource(tmp_path)


def test_an_image_without_provenance_cannot_be_verified():
    with pytest.raises(SourceError, match="does not say where it was built from"):
        source_of({})
