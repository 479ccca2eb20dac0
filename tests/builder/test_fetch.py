import subprocess

import pytest

from dsbuild.builder.errors import SourceError
from dsbuild.builder.fetch import GitFetcher, pick_ref, public_url, resolve_local
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
