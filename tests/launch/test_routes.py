"""Launch links in mybinder.org's format: parsing, validation, and building them back."""

from __future__ import annotations

import pytest
from dsbuild.launch.errors import BadLaunchPath, SchemeNotAllowed, UnknownProvider
from dsbuild.launch.routes import (
    badge_markdown,
    launch_link,
    parse_launch,
    spec_for_repository,
    stream_path,
)

FILE = ("https", "file")


def test_github_link():
    spec = parse_launch("gh/jupyterhub/binderhub/main", {"labpath": "docs/index.ipynb"})
    assert spec.url == "https://github.com/jupyterhub/binderhub"
    assert spec.ref == "main" and spec.source.ref == "main"
    assert spec.open_path == "lab/tree/docs/index.ipynb"
    assert spec.name == "binderhub"


def test_github_ref_may_hold_slashes_and_defaults_to_head():
    assert parse_launch("gh/org/repo/feature/x", {}).ref == "feature/x"
    assert parse_launch("gh/org/repo/feature%2Fx", {}).ref == "feature/x"
    head = parse_launch("gh/org/repo", {})
    assert head.ref == "HEAD" and head.source.ref is None and head.open_path == "lab"


def test_gitlab_links_encoded_and_plain():
    encoded = parse_launch("gl/group%2Fsub%2Fproject/v1.0", {})
    assert encoded.url == "https://gitlab.com/group/sub/project" and encoded.ref == "v1.0"
    plain = parse_launch("gl/group/project/main", {})
    assert plain.url == "https://gitlab.com/group/project" and plain.ref == "main"


def test_git_link_with_an_allowed_scheme():
    spec = parse_launch("git/file%3A%2F%2F%2Fsrv%2Frepos%2Fdemo/main", {"urlpath": "/lab"}, FILE)
    assert spec.url == "file:///srv/repos/demo" and spec.ref == "main" and spec.open_path == "lab"
    https = parse_launch("git/https%3A%2F%2Fcodeberg.org%2Fa%2Fb.git/v2", {})
    assert https.url == "https://codeberg.org/a/b.git" and https.name == "b"


def test_file_urls_need_the_admin():
    with pytest.raises(SchemeNotAllowed, match="file:// repositories are not enabled"):
        parse_launch("git/file%3A%2F%2F%2Fetc/main", {})


@pytest.mark.parametrize("url", [
    "ext%3A%3Ash%20-c%20touch%20x",  # git's ext:: transport runs commands
    "https%3A%2F%2Fuser%3Apw%40host%2Frepo",  # credentials
    "https%3A%2F%2Fhost%2Frepo%3Fx%3D1",  # query
    "https%3A%2F%2Fhost%2Fa%2F..%2F..%2Fb",  # ..
    "host%3Arepo",  # scp-like
    "file%3A%2F%2Fremote%2Fpath",  # file:// on another host
    "",
])
def test_bad_git_urls(url):
    with pytest.raises((BadLaunchPath, SchemeNotAllowed)):
        parse_launch(f"git/{url}/main", {}, FILE)


@pytest.mark.parametrize("provider", ["zenodo", "gist", "svn", "<script>"])
def test_unknown_providers(provider):
    with pytest.raises(UnknownProvider) as err:
        parse_launch(f"{provider}/a/b/c", {})
    assert "gh (GitHub)" in str(err.value) and "<script>" not in str(err.value)


@pytest.mark.parametrize("path", ["gh/org/repo/..", "gh/org/repo/-x", "gh/org/repo/a..b", "gh/org/repo/a b",
                                  "gh/o%2Fx/repo/main", "gh/../repo/main", "gh/org", "gh/org/repo/main\x00"])
def test_bad_specs(path):
    with pytest.raises(BadLaunchPath):
        parse_launch(path, {})


@pytest.mark.parametrize("labpath", ["../secret", "/etc/passwd", "a/../../b", "a\\b", "a\x00b", "~/x", "a//b",
                                     "./a", "javascript:alert(1)"])
def test_labpaths_that_try_to_escape(labpath):
    with pytest.raises(BadLaunchPath):
        parse_launch("gh/org/repo/main", {"labpath": labpath})


@pytest.mark.parametrize("urlpath", ["//evil.example/x", "http://evil.example/", "javascript:alert(1)",
                                     "lab/../../hub/admin", "%2e%2e/hub", "lab/%2E%2E/x", "a%2fb/..", "lab\x07",
                                     "lab tree", "lab/<script>"])
def test_urlpaths_that_try_to_escape(urlpath):
    with pytest.raises(BadLaunchPath):
        parse_launch("gh/org/repo/main", {"urlpath": urlpath})


def test_open_paths():
    def open_(args):
        return parse_launch("gh/org/repo/main", args).open_path

    assert open_({"labpath": "notebooks/a b.ipynb"}) == "lab/tree/notebooks/a%20b.ipynb"
    assert open_({"filepath": "a.ipynb"}) == "lab/tree/a.ipynb"
    assert open_({"urlpath": "/voila/render/a.ipynb"}) == "voila/render/a.ipynb"
    assert open_({"urlpath": "lab/tree/a.ipynb?reset", "labpath": "b.ipynb"}) == "lab/tree/a.ipynb?reset"


@pytest.mark.parametrize("repo, ref, expected", [
    ("https://github.com/org/repo", "main", "v2/gh/org/repo/main"),
    ("gh:org/repo", "", "v2/gh/org/repo/HEAD"),
    ("https://gitlab.com/group/sub/proj.git", "v1", "v2/gl/group%2Fsub%2Fproj/v1"),
    ("file:///srv/demo", "feature/x", "v2/git/file%3A%2F%2F%2Fsrv%2Fdemo/feature/x"),
])
def test_links_from_the_home_page_form(repo, ref, expected):
    spec = spec_for_repository(repo, ref, "notebooks/a.ipynb", "file", FILE)
    link = launch_link("http://launch.example/", spec)
    assert link == f"http://launch.example/{expected}?labpath=notebooks/a.ipynb"
    assert stream_path(spec) == f"build/{expected.removeprefix('v2/')}?labpath=notebooks/a.ipynb"
    again = parse_launch(link.split("/v2/", 1)[1].split("?")[0], {"labpath": "notebooks/a.ipynb"}, FILE)
    assert again == spec
    assert badge_markdown("http://launch.example/", link) == (
        f"[![Launch with dsbuild](http://launch.example/badge.svg)]({link})")


def test_home_page_form_refuses_what_links_refuse():
    with pytest.raises(SchemeNotAllowed):
        spec_for_repository("file:///srv/demo", "main")
    with pytest.raises(BadLaunchPath):
        spec_for_repository("gh:org/repo", "main", "../../etc", "file")
