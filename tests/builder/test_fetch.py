import subprocess

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import GitFetcher, extract_tree, pick_ref, public_url, resolve_local, safe_members
from dsbuild.builder.source import GitSource, LocalSource


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "origin"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.org")
    git(path, "config", "user.name", "t")
    (path / "requirements.txt").write_text("numpy\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "one")
    git(path, "tag", "-a", "v1", "-m", "v1")
    (path / "requirements.txt").write_text("numpy\npandas\n")
    git(path, "commit", "-q", "-am", "two")
    return path


def test_pick_ref_prefers_peeled_tags():
    listing = "aaa\tHEAD\naaa\trefs/heads/main\nbbb\trefs/tags/v1\nccc\trefs/tags/v1^{}\n"
    assert pick_ref(listing, None) == "aaa"
    assert pick_ref(listing, "main") == "aaa"
    assert pick_ref(listing, "v1") == "ccc"
    assert pick_ref(listing, "nope") is None


def test_resolve_and_export_branch_tag_and_sha(repo, tmp_path):
    fetcher = GitFetcher(tmp_path / "cache")
    head = git(repo, "rev-parse", "HEAD")
    first = git(repo, "rev-parse", "HEAD~1")
    assert fetcher.resolve(GitSource(repo.as_uri(), None)).commit == head
    assert fetcher.resolve(GitSource(repo.as_uri(), "main")).commit == head
    tagged = fetcher.resolve(GitSource(repo.as_uri(), "v1"))
    assert tagged.commit == first and tagged.tag == first[:12]
    by_sha = fetcher.resolve(GitSource(repo.as_uri(), first[:10]))
    assert by_sha.commit == first
    out = tmp_path / "out"
    out.mkdir()
    fetcher.export(by_sha, out)
    assert (out / "requirements.txt").read_text() == "numpy\n"
    assert not (out / ".git").exists()


def test_missing_ref_and_missing_repo_are_one_line_errors(repo, tmp_path):
    fetcher = GitFetcher(tmp_path / "cache")
    with pytest.raises(SourceError, match="ref 'nope' not found in file://"):
        fetcher.resolve(GitSource(repo.as_uri(), "nope"))
    with pytest.raises(SourceError, match="cannot read repository"):
        fetcher.resolve(GitSource((tmp_path / "missing").as_uri(), None))


def test_local_folder_identity(repo, tmp_path):
    clean = resolve_local(LocalSource(repo))
    assert clean.commit == git(repo, "rev-parse", "HEAD")
    (repo / "notebook.ipynb").write_text("{}")
    dirty = resolve_local(LocalSource(repo))
    assert dirty.commit is None and dirty.content_id.startswith("src-")
    assert resolve_local(LocalSource(repo)).content_id == dirty.content_id
    (repo / "notebook.ipynb").write_text('{"cells": []}')
    assert resolve_local(LocalSource(repo)).content_id != dirty.content_id
    with pytest.raises(SourceError, match="no such folder"):
        resolve_local(LocalSource(tmp_path / "nope"))


def test_credentials_never_reach_labels():
    assert public_url("https://user:tok@example.org:8443/a/b.git") == "https://example.org:8443/a/b.git"
    assert public_url("https://example.org/a") == "https://example.org/a"


def _tar(path, *members):
    """A tar of (name, kind, extra) members: kind "file" (extra: mode), "dir", "sym"/"hard" (extra: target)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, kind, extra in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = 2, extra
                tar.addfile(info, io.BytesIO(b"hi"))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "dev": tarfile.CHRTYPE}[kind]
            info.linkname = extra or ""
            tar.addfile(info)
    return path


@pytest.mark.parametrize("members", [
    [("/etc/evil", "file", 0o644)],
    [("../evil", "file", 0o644)],
    [("a", "sym", "/etc")],
    [("a", "sym", "../../etc")],
    [("a", "hard", "../outside")],
    [("null", "dev", None)],
], ids=["absolute", "dot-dot", "absolute-link", "escaping-link", "escaping-hardlink", "device"])
def test_a_tree_entry_that_leaves_the_folder_stops_the_export(tmp_path, members):
    import tarfile

    with tarfile.open(_tar(tmp_path / "t.tar", *members)) as tar:
        with pytest.raises(SourceError, match="does not extract"):
            list(safe_members(tar, tmp_path / "dest"))


def test_without_the_data_filter_the_same_rules_extract_a_tree(tmp_path, monkeypatch):
    """Debian bookworm's Python 3.11.2 (the hub image's) has no tarfile data filter."""
    import tarfile

    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    dest = tmp_path / "dest"
    dest.mkdir()
    path = _tar(tmp_path / "t.tar", ("d", "dir", None), ("d/run", "file", 0o4777), ("d/link", "sym", "run"))
    with tarfile.open(path) as tar:
        extract_tree(tar, dest)
    assert (dest / "d" / "run").read_text() == "hi"
    assert (dest / "d" / "run").stat().st_mode & 0o7777 == 0o755  # no setuid, no group/other write
    assert (dest / "d" / "link").resolve() == (dest / "d" / "run").resolve()
