"""One repository, however its URL is spelled: limits and build de-duplication count it once."""

from __future__ import annotations

import pytest
from dsbuild.launch.launcher import server_name_for
from dsbuild.builder.names import canonical_url
from dsbuild.launch.routes import parse_launch

SAME = [
    "https://git.example.org/org/b",
    "https://git.example.org/org/b/",
    "https://git.example.org/org/b.git",
    "https://git.example.org/org/b.git/",
    "https://GIT.Example.org/org/b",
    "https://git.example.org:443/org/b",
    "https://git.example.org./org/b",
    "https://git.example.org//org//b",
    "HTTPS://git.example.org/org/b",
    "https://git.example.org/org/%62",
]


@pytest.mark.parametrize("url", SAME)
def test_spellings_of_one_repository_share_a_key(url):
    assert canonical_url(url) == "https://git.example.org/org/b"


@pytest.mark.parametrize("a, b", [
    ("https://git.example.org/org/b", "https://git.example.org/org/B"),  # paths are case-sensitive on most hosts
    ("https://git.example.org/org/b", "https://git.example.org:8443/org/b"),
    ("https://git.example.org/org/b", "http://git.example.org/org/b"),
    ("https://git.example.org/org/b", "https://git.example.org/org/bc"),
    ("https://git.example.org/org/b", "https://git.example.org/b"),
])
def test_different_repositories_keep_different_keys(a, b):
    assert canonical_url(a) != canonical_url(b)


def test_case_insensitive_hosts_and_default_ports():
    assert canonical_url("https://github.com/Org/Repo.git") == canonical_url("https://github.com/org/repo")
    assert canonical_url("http://host:80/a") == "http://host/a"
    assert canonical_url("ssh://host:22/a.git") == "ssh://host/a"
    assert canonical_url("git://host:9418/a") == "git://host/a"
    assert canonical_url("http://[::1]:8080/a/") == "http://[::1]:8080/a"


def test_file_urls():
    assert canonical_url("file:///tmp/x/") == canonical_url("file://localhost/tmp/x") == canonical_url("file:///tmp/x.git")


@pytest.mark.parametrize("path", ["gh/org/b/main", "gh/Org/B/main"])
def test_launch_links_of_one_repository_name_one_server(path):
    spec = parse_launch(path, {})
    assert server_name_for(spec.url, "a" * 40) == server_name_for("https://github.com/org/b.git", "a" * 40)


def test_links_with_trailing_slash_and_git_suffix_count_as_one_repository():
    specs = [parse_launch(f"git/{quoted}/main", {}) for quoted in (
        "https%3A%2F%2Fgit.example.org%2Forg%2Fb", "https%3A%2F%2Fgit.example.org%2Forg%2Fb%2F",
        "https%3A%2F%2Fgit.example.org%2Forg%2Fb.git")]
    assert len({canonical_url(s.url) for s in specs}) == 1
