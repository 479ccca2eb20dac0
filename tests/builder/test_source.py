from pathlib import Path

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.names import image_name, validate_image_ref
from dsbuild.builder.source import GitSource, LocalSource, parse_source


def test_shorthand_becomes_https_url():
    source = parse_source("gh:jupyterhub/repo2docker", "main")
    assert source == GitSource("https://github.com/jupyterhub/repo2docker", "main")
    assert source.name == "repo2docker"


@pytest.mark.parametrize(
    "text",
    ["https://example.org/a/b.git", "file:///srv/repos/b", "git@example.org:a/b.git", "ssh://git@example.org/a/b"],
)
def test_urls_are_git_sources(text):
    source = parse_source(text)
    assert isinstance(source, GitSource) and source.url == text and source.name == "b"


def test_folder_is_local_and_folder_with_ref_is_git(tmp_path):
    assert parse_source(str(tmp_path)) == LocalSource(tmp_path)
    with_ref = parse_source(str(tmp_path), "v1")
    assert with_ref == GitSource(tmp_path.as_uri(), "v1")


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/x", "a b", "x;rm -rf /", "../up", "main..other", "$(id)", "-x"])
def test_refs_that_could_inject_are_refused(ref):
    with pytest.raises(SourceError, match="not a valid git ref"):
        parse_source("https://example.org/a/b", ref)


@pytest.mark.parametrize("text", ["--upload-pack=evil", "https://a b", "gh:../../etc", "gh:org/repo;id", "ftp://x/y"])
def test_bad_repository_arguments_are_refused(text):
    with pytest.raises(SourceError):
        parse_source(text)


def test_image_name_is_a_valid_docker_name():
    assert image_name(parse_source("gh:Org/My_Repo.Name")).startswith("dsbuild-my-repo-name-")
    assert image_name(LocalSource(Path("/x/" + "A" * 100))).startswith("dsbuild-a")
    assert len(image_name(LocalSource(Path("/x/" + "a" * 100)))) <= 60


@pytest.mark.parametrize("ref", ["dsbuild-base:bookworm", "localhost:5000/team/img:1.0", "debian"])
def test_image_refs(ref):
    assert validate_image_ref(ref) == ref


@pytest.mark.parametrize("ref", ["debian\nRUN id", "debian;id", "Debian:latest", "a:b:c"])
def test_bad_image_refs(ref):
    with pytest.raises(SourceError):
        validate_image_ref(ref)


def test_a_provider_is_one_small_class(monkeypatch):
    from dsbuild.builder.source import PROVIDERS, HostedProvider
    from dsbuild.launch.routes import launch_link, parse_launch

    class Codeberg(HostedProvider):
        key, title, host = "cb", "Codeberg", "https://codeberg.org/"

    monkeypatch.setitem(PROVIDERS, "cb", Codeberg())
    assert parse_source("cb:org/repo", "main") == GitSource("https://codeberg.org/org/repo", "main")
    spec = parse_launch("cb/org/repo/main", {})
    assert spec.url == "https://codeberg.org/org/repo" and spec.ref == "main"
    assert launch_link("http://x/", spec) == "http://x/v2/cb/org/repo/main"
    with pytest.raises(SourceError):
        parse_source("cb:org/../etc")
