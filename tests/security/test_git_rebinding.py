"""DNS rebinding: a name that resolves to a public (or allowed) address when it is
checked and to an internal one when git connects. git must connect to the address that
was checked: every network git command resolves the host once, checks it, and pins git
(libcurl) to those addresses.

The test's "DNS" is the guard's resolver (the edge the service's check uses); the
second, different answer is the machine's own: `localhost` resolves to 127.0.0.1, where
an internal git server holds a secret repository. The checked answer is 127.0.0.2 (in
an allowed network), where a public-looking server holds another repository. Both are
real git smart-HTTP servers on one port, on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import GitFetcher
from dsbuild.builder.gitenv import GitLimits
from dsbuild.builder.hostguard import REFUSED_HOST, HostGuard, HostRefused, curl_resolve
from dsbuild.builder.source import GitSource
from dsbuild.launch.config import LaunchConfig
from dsbuild.launch.limits import parse_networks
from dsbuild.launch.preflight import service_git_limits

from .servers import git_http_server
from .test_git import _commit, _repo

CHECKED = "127.0.0.2"  # the answer the check sees (allowed below)
INTERNAL = "127.0.0.1"  # what the machine's resolver says for localhost: the internal server
ALLOWED = parse_networks([f"{CHECKED}/32"])


def _bare(root: Path, name: str, files: dict[str, bytes]) -> str:
    """A bare repository `root/name` with one commit of `files`; returns the commit."""
    work = _repo(root.parent / f"work-{root.name}-{name}")
    sha = _commit(work, files, "one")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / name)], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(root / name), "config", "uploadpack.allowAnySHA1InWant", "true"], check=True)
    return sha


@pytest.fixture
def two_servers(tmp_path):
    """The same path on one port: 127.0.0.2 serves PUBLIC, 127.0.0.1 serves SECRET."""
    public, internal = tmp_path / "public", tmp_path / "internal"
    shas = {"public": _bare(public, "r.git", {"README": b"PUBLIC\n"}),
            "internal": _bare(internal, "r.git", {"README": b"SECRET\n"})}
    with git_http_server(public, (CHECKED,)) as (port, seen_public):
        with git_http_server(internal, (INTERNAL,), port) as (_, seen_internal):
            yield port, shas, seen_public, seen_internal


class Answers:
    """A resolver that gives its answers in turn (the last one from then on), and counts."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def _export(fetcher: GitFetcher, url: str, dest: Path) -> str:
    resolved = fetcher.resolve(GitSource(url))
    dest.mkdir()
    fetcher.export(resolved, dest)
    return (dest / "README").read_text()


def test_without_a_pin_git_would_follow_the_second_answer(tmp_path, two_servers):
    """The attack is real: git's own lookup of the name reaches the internal server."""
    port, shas, _, seen_internal = two_servers
    text = _export(GitFetcher(tmp_path / "cache"), f"http://localhost:{port}/r.git", tmp_path / "out")
    assert text == "SECRET\n" and seen_internal


def test_git_connects_to_the_address_that_was_checked(tmp_path, two_servers):
    port, shas, seen_public, seen_internal = two_servers
    dns = Answers([CHECKED])
    limits = GitLimits(protocols=("http",), hosts=HostGuard(ALLOWED, dns))
    text = _export(GitFetcher(tmp_path / "cache", limits), f"http://localhost:{port}/r.git", tmp_path / "out")
    assert text == "PUBLIC\n"
    assert seen_public and not seen_internal, "git looked the name up again and reached the internal server"
    assert dns.calls == 2  # ls-remote and fetch: each checked and pinned


def test_an_answer_that_changes_between_commands_is_refused(tmp_path, two_servers):
    """The first command (ls-remote) sees the allowed address; when the fetch comes, the
    name points inside: the fetch is refused before git connects anywhere."""
    port, shas, seen_public, seen_internal = two_servers
    dns = Answers([CHECKED], [INTERNAL])
    fetcher = GitFetcher(tmp_path / "cache", GitLimits(protocols=("http",), hosts=HostGuard(ALLOWED, dns)))
    resolved = fetcher.resolve(GitSource(f"http://localhost:{port}/r.git"))
    assert resolved.commit == shas["public"]
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(HostRefused) as caught:
        fetcher.export(resolved, dest)
    assert str(caught.value) == REFUSED_HOST and INTERNAL in caught.value.detail
    assert not seen_internal and list(dest.iterdir()) == []


def test_internal_addresses_are_refused_at_the_git_edge(tmp_path, two_servers):
    """Without an allowed network, loopback is refused by git's own check (not only the
    launch page's), with the fixed sentence."""
    port, _, seen_public, seen_internal = two_servers
    fetcher = GitFetcher(tmp_path / "cache", GitLimits(protocols=("http",), hosts=HostGuard()))
    for url in (f"http://localhost:{port}/r.git", f"http://{INTERNAL}:{port}/r.git", f"http://{CHECKED}:{port}/r.git"):
        with pytest.raises(SourceError, match=REFUSED_HOST):
            fetcher.resolve(GitSource(url))
    assert not seen_public and not seen_internal


def test_transports_that_cannot_be_pinned_are_refused():
    guard = HostGuard(resolve=Answers(["93.184.216.34"]))
    for url in ("ssh://git@example.org/r.git", "git://example.org/r.git", "ext::sh -c id"):
        with pytest.raises(HostRefused):
            guard.pin(url)
    assert guard.pin("file:///srv/repo") == ()
    assert guard.pin("https://93.184.216.34/r.git") == ()  # an address: nothing left to resolve
    assert guard.pin("https://example.org/r.git") == ("-c", "http.curloptResolve=example.org:443:93.184.216.34")
    assert curl_resolve("h", 80, ["2001:db8::1", "192.0.2.1"]) == "h:80:[2001:db8::1],192.0.2.1"


def test_the_service_narrows_git_to_its_schemes_and_pins_every_fetch():
    config = LaunchConfig(hub_url="http://127.0.0.1:8000/", hub_token="t", allowed_schemes=["https", "file"],
                          allowed_host_networks=["10.0.0.0/8"])
    limits = service_git_limits(config)
    assert limits.protocols == ("https", "file")
    assert limits.hosts is not None and limits.hosts.allowed == parse_networks(["10.0.0.0/8"])
