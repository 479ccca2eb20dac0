"""git against hostile servers and repositories: a server that dribbles, a huge
repository, one with too many files, a short sha that is not advertised (which makes
dsbuild fetch every branch), and an operator whose git configuration holds secrets.
All servers are on loopback; all repositories are made here."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import GitFetcher, Resolved
from dsbuild.builder.gitenv import GitLimits, describe_failure, git_env
from dsbuild.builder.source import GitSource

from .servers import dribbling_server, recording_index

SLOW = GitLimits(low_speed_bytes=1000, low_speed_seconds=3, timeout=60, workers=1, wait_for_worker=1.0)


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(repo.parent), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    return path


def _commit(repo: Path, files: dict[str, bytes], message: str) -> str:
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def test_a_slow_server_is_given_up_with_a_plain_sentence(tmp_path):
    with dribbling_server() as port:
        with pytest.raises(SourceError) as caught:
            GitFetcher(tmp_path / "cache", SLOW).resolve(GitSource(f"http://127.0.0.1:{port}/slow.git"))
    message = str(caught.value)
    assert "too slow" in message
    assert "fatal" not in message and "curl" not in message.lower() and "bytes/sec" not in message


def test_the_worker_pool_is_bounded(tmp_path):
    """With one worker, a second fetch waits, then is refused, while the first is stuck on a slow server."""
    errors: list[str] = []
    with dribbling_server() as port:
        url = f"http://127.0.0.1:{port}/slow.git"
        first = threading.Thread(target=lambda: _catch(errors, GitFetcher(tmp_path / "a", SLOW), url))
        first.start()
        for _ in range(500):  # until the first fetch holds the worker and is stuck on the server
            if _connected(port):
                break
            threading.Event().wait(0.02)
        with pytest.raises(SourceError, match="too many repositories are being fetched"):
            GitFetcher(tmp_path / "b", SLOW).resolve(GitSource(url))
        first.join(60)
    assert errors and "too slow" in errors[0]


def _catch(errors: list[str], fetcher: GitFetcher, url: str) -> None:
    try:
        fetcher.resolve(GitSource(url))
    except SourceError as err:
        errors.append(str(err))


def _connected(port: int) -> bool:
    out = subprocess.run(["ss", "-tn", "state", "established", f"( dport = :{port} )"], capture_output=True, text=True).stdout
    return f":{port}" in out


def test_a_huge_repository_is_stopped_while_fetching(tmp_path):
    """A short sha no branch names makes dsbuild fetch every branch: that fetch is capped
    while it runs, and the half-fetched mirror is removed."""
    repo = _repo(tmp_path / "huge")
    first = _commit(repo, {"a.bin": _random(4 * 2**20)}, "first")
    for n in range(6):
        _commit(repo, {f"b{n}.bin": _random(8 * 2**20)}, f"more {n}")
    limits = GitLimits(max_fetch_bytes=6 * 2**20)
    cache = tmp_path / "cache"
    with pytest.raises(SourceError, match="larger than 6 MiB"):
        GitFetcher(cache, limits).resolve(GitSource(repo.as_uri(), first[:8]))
    assert not any((cache).glob("*/objects")), "the half-fetched mirror was kept"


def test_too_many_files_are_refused_before_anything_is_written(tmp_path):
    repo = _repo(tmp_path / "many")
    sha = _commit(repo, {f"d{n // 100}/f{n}.txt": b"" for n in range(1500)}, "many files")
    fetcher = GitFetcher(tmp_path / "cache", GitLimits(max_files=1000))
    resolved = fetcher.resolve(GitSource(repo.as_uri()))
    assert resolved.commit == sha
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(SourceError, match="1500 files"):
        fetcher.export(resolved, dest)
    assert list(dest.iterdir()) == []


def test_the_operators_git_configuration_is_not_used(tmp_path, monkeypatch):
    """An operator's ~/.gitconfig with an extra header and a credential helper, and an SSH
    agent: none of it reaches a repository's server."""
    home = tmp_path / "operator"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[http]\n\textraHeader = Authorization: Bearer OPERATOR-SECRET\n"
        "[credential]\n\thelper = !echo password=OPERATOR-PASSWORD\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'http.extraheader=X-Operator: OPERATOR-SECRET'")
    with recording_index("127.0.0.1") as (port, seen):
        with pytest.raises(SourceError) as caught:
            GitFetcher(tmp_path / "cache").resolve(GitSource(f"http://127.0.0.1:{port}/private.git"))
    assert seen, "git never reached the server"
    assert not any("OPERATOR" in str(request) for request in seen)
    assert "not found" in str(caught.value)
    env = git_env(GitLimits(), tmp_path)
    assert "SSH_AUTH_SOCK" not in env and "GIT_CONFIG_PARAMETERS" not in env and env["GIT_CONFIG_NOSYSTEM"] == "1"


def test_protocols_outside_the_allow_list_are_refused(tmp_path):
    repo = _repo(tmp_path / "local")
    _commit(repo, {"README": b"hi"}, "one")
    with pytest.raises(SourceError) as caught:
        GitFetcher(tmp_path / "cache", GitLimits(protocols=("https",))).resolve(GitSource(repo.as_uri()))
    assert "not allowed" in str(caught.value)


def test_git_error_text_is_never_shown_raw():
    raw = "fatal: unable to access 'https://10.1.2.3/x.git/': Failed to connect to 10.1.2.3 port 443: Connection refused"
    assert describe_failure(raw) == "the repository's server cannot be reached"
    assert describe_failure("fatal: something new and odd at /srv/secret/path") == "git could not read the repository"


def test_a_resolved_commit_exports_within_limits(tmp_path):
    repo = _repo(tmp_path / "ok")
    sha = _commit(repo, {"requirements.txt": b"toolz\n"}, "ok")
    fetcher = GitFetcher(tmp_path / "cache", GitLimits(max_files=10, max_fetch_bytes=2**20))
    dest = tmp_path / "out"
    dest.mkdir()
    fetcher.export(Resolved(GitSource(repo.as_uri()), sha, sha), dest)
    assert (dest / "requirements.txt").read_text() == "toolz\n"


def _random(n: int) -> bytes:
    with open("/dev/urandom", "rb") as handle:
        return handle.read(n)


def test_many_files_are_stopped_while_fetching_over_http(tmp_path):
    """3000 files behind a real git smart-HTTP server: git's own object count (the pack's
    header) is read from its progress while it fetches and git is killed at once; the
    half-fetched mirror is removed, and nothing is exported."""
    from .servers import git_http_server

    work = _repo(tmp_path / "many")
    sha = _commit(work, {f"d{n // 100}/f{n}.txt": f"{n}\n".encode() for n in range(3000)}, "many files")
    served = tmp_path / "served"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "many.git")], check=True, capture_output=True)
    cache = tmp_path / "cache"
    fetcher = GitFetcher(cache, GitLimits(max_fetch_objects=1000, max_files=100_000))
    with git_http_server(served) as (port, seen):
        resolved = fetcher.resolve(GitSource(f"http://127.0.0.1:{port}/many.git"))
        assert resolved.commit == sha
        dest = tmp_path / "out"
        dest.mkdir()
        with pytest.raises(SourceError, match=r"the repository has 30\d\d objects to fetch, more than this builder takes \(1000\)"):
            fetcher.export(resolved, dest)
    assert any("git-upload-pack" in path for _, path in seen if "service=" not in path), "git never fetched"
    assert list(dest.iterdir()) == [] and not any(cache.glob("*/objects")), "the half-fetched mirror was kept"


def test_a_repository_under_the_object_limit_is_fetched(tmp_path):
    repo = _repo(tmp_path / "few")
    sha = _commit(repo, {f"f{n}.txt": f"{n}\n".encode() for n in range(50)}, "few files")
    fetcher = GitFetcher(tmp_path / "cache", GitLimits(max_fetch_objects=100))
    dest = tmp_path / "out"
    dest.mkdir()
    fetcher.export(Resolved(GitSource(repo.as_uri()), sha, sha), dest)
    assert len(list(dest.iterdir())) == 50


def test_the_requester_is_told_the_object_limit_as_it_is():
    from dsbuild.launch.hosts import safe_source_message

    message = "the repository has 3001 objects to fetch, more than this builder takes (1000)"
    assert safe_source_message(message, "https://example.org/r.git") == message


def test_only_gits_own_progress_counts_not_the_servers():
    from dsbuild.builder.gitenv import fetched_objects

    progress = (b"remote: Enumerating objects: 5, done.\rremote: Receiving objects:  1% (1/9)\r"
                b"Receiving objects:   0% (1/3001)\rReceiving objects:  10% (301/3001)\r")
    assert fetched_objects(progress) == 3001
    assert fetched_objects(b"remote: Receiving objects:  1% (1/999999)\n") == 0  # the server's words
    assert fetched_objects(b"Unpacking objects: 100% (12/12), done.\n") == 12
