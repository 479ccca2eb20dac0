"""names.py's guarantees: one ref rule, one image-reference rule, image names that never
collide across sources, and tags that differ when the environment options differ."""

from pathlib import Path

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.host import HostSettings
from dsbuild.builder.names import (
    describe_options,
    environment_options,
    environment_suffix,
    image_name,
    image_tag,
    is_image_ref,
    is_ref,
    source_hash,
    validate_ref,
)
from dsbuild.builder.plan import BuildOptions
from dsbuild.builder.source import GitSource, LocalSource, parse_source


def test_same_repository_name_from_two_sources_gets_two_names():
    a, b = parse_source("gh:a/analysis"), parse_source("gh:b/analysis")
    assert image_name(a) != image_name(b)
    assert image_name(a).startswith("dsbuild-analysis-") and image_name(b).startswith("dsbuild-analysis-")
    assert image_name(LocalSource(Path("/x/analysis"))) != image_name(LocalSource(Path("/y/analysis")))


@pytest.mark.parametrize("spelling", [
    "https://github.com/a/analysis.git", "https://github.com/a/analysis/", "HTTPS://GitHub.com/a/analysis",
    "https://user:secret@github.com/a/analysis",
])
def test_spellings_of_one_repository_share_a_name(spelling):
    assert image_name(GitSource(spelling)) == image_name(parse_source("gh:a/analysis"))


def test_the_ref_does_not_change_the_name_and_the_prefix_is_kept():
    url = "https://host.example/org/Repo_X"
    assert image_name(GitSource(url, "main")) == image_name(GitSource(url, "0" * 40))
    assert image_name(GitSource(url), "serve").startswith("serve-repo-x-")
    assert source_hash(GitSource(url)) != source_hash(GitSource(url + "y"))


@pytest.mark.parametrize("text", ["gh:Org/" + "N" * 90, "/srv/" + "x" * 200, "https://h/o/---"])
def test_every_name_is_a_valid_docker_repository_name(text):
    name = image_name(parse_source(text))
    assert len(name) <= 60 and is_image_ref(name) and is_image_ref(f"{name}:abc")


@pytest.mark.parametrize("ref", ["main", "feature/x", "v1.0", "a" * 40, "HEAD", "release@2024"])
def test_refs(ref):
    assert is_ref(ref) and validate_ref(ref) == ref


@pytest.mark.parametrize("ref", ["-x", "_x", "a..b", "a//b", "x.lock", "x/", "a b", "$(id)", "", "a" * 300])
def test_refs_refused(ref):
    assert not is_ref(ref)
    with pytest.raises(SourceError):
        validate_ref(ref)


def test_default_options_keep_the_plain_tag_and_others_get_a_suffix():
    plain = environment_options(BuildOptions(), HostSettings())
    assert plain == {} and environment_suffix(plain) is None and describe_options(plain) == "defaults"
    assert image_tag("0123456789ab", None) == "0123456789ab"
    as_of = environment_options(BuildOptions(as_of="2024-01-01"), HostSettings())
    locked = environment_options(BuildOptions(locked=True), HostSettings())
    index = environment_options(BuildOptions(), HostSettings(index_url="https://u:pw@mirror.example/simple"))
    suffixes = {environment_suffix(c) for c in (as_of, locked, index)}
    assert len(suffixes) == 3 and None not in suffixes
    assert describe_options(as_of) == "as-of=2024-01-01" and describe_options(locked) == "locked"
    assert "pw" not in describe_options(index) and "mirror.example" in describe_options(index)
    tag = image_tag("0123456789ab", environment_suffix(as_of))
    assert tag.startswith("0123456789ab-") and is_image_ref(f"x:{tag}")


def test_keep_tests_gets_its_own_tag_and_options_hash():
    """An image with the test suites kept never replaces the default (trimmed) one."""
    from dsbuild.builder.target import options_hash

    kept, default = BuildOptions(keep_tests=True), BuildOptions()
    assert environment_options(kept, HostSettings()) == {"keep-tests": True}
    assert environment_suffix(environment_options(kept, HostSettings())) != environment_suffix(environment_options(default, HostSettings()))
    assert options_hash(kept, "sha256:base", HostSettings()) != options_hash(default, "sha256:base", HostSettings())
