"""The builder's workspace: what outlives one build, under one cache folder.

    <root>/git/        bare mirrors of git sources (GitFetcher, built once per workspace)
    <root>/contexts/   one build-context folder per image name, locked while a build uses it
    <root>/locks/      lock records: the lock digest last seen per environment (locklabel.py)
    <root>/digests/    file digests by stat, per folder and per context (digests.py)

The root is $DSBUILD_CACHE_DIR or ~/.cache/dsbuild. `build()` and `decide_target()` take
a Workspace, so tests pass one under a temporary folder (or a fake fetcher)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .digests import FileDigests
from .errors import ConfigError
from .fetch import GitFetcher, Resolved, local_commit_date, resolve_local
from .gitenv import GitLimits
from .locklabel import LockRecords
from .source import GitSource, Source


def cache_dir() -> Path:
    return Path(os.environ.get("DSBUILD_CACHE_DIR") or Path.home() / ".cache" / "dsbuild")


@dataclass(frozen=True)
class Workspace:
    root: Path
    fetcher: GitFetcher
    locks: LockRecords

    @classmethod
    def at(cls, root: Path, git_limits: GitLimits = GitLimits()) -> Workspace:
        return cls(root, GitFetcher(root / "git", git_limits), LockRecords(root / "locks"))

    @classmethod
    def default(cls, git_limits: GitLimits = GitLimits()) -> Workspace:
        """The workspace under cache_dir(); a service passes its own git limits."""
        return cls.at(cache_dir(), git_limits)

    def context_folder(self, image_name: str) -> Path:
        return self.root / "contexts" / image_name

    def resolve(self, source: Source) -> Resolved:
        """The commit a git source's ref names now, or a folder's content id."""
        if isinstance(source, GitSource):
            return self.fetcher.resolve(source)
        return resolve_local(source, self.digests(f"folder-{hashlib.sha256(str(source.path).encode()).hexdigest()[:16]}"))

    def digests(self, name: str) -> FileDigests:
        """The remembered file digests of one folder (a source folder, a build context)."""
        return FileDigests(self.root / "digests" / f"{name}.json")

    def export(self, resolved: Resolved, dest: Path) -> Path:
        """The files to build: a git commit exported into `dest`, or the folder itself."""
        if isinstance(resolved.source, GitSource):
            self.fetcher.export(resolved, dest)
            return dest
        return resolved.source.path

    def commit_date(self, resolved: Resolved) -> str:
        """--as-of commit: the committer date of the resolved commit."""
        if resolved.commit is None:
            raise ConfigError("--as-of commit needs a commit, but this folder has uncommitted changes; give a date instead")
        if isinstance(resolved.source, GitSource):
            return self.fetcher.commit_date(resolved)
        return local_commit_date(resolved.source.path, resolved.commit)
