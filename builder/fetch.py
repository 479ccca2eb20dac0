"""The git edge: resolve a ref to a commit, export a commit's files, identify local folders.

git is always called with an argument list (never a shell) and `--` before URLs and refs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .digests import FileDigests
from .errors import SourceError
from .gc import mark_used
from .gitenv import GitFailed, GitLimits, run_git
from .names import is_sha
from .source import GitSource, LocalSource, Source

if TYPE_CHECKING:
    import tarfile


@dataclass(frozen=True)
class Resolved:
    """A source pinned down: the commit (for git) and the id that tags the image."""

    source: Source
    commit: str | None  # full sha, when the source is a commit
    content_id: str  # commit sha, or "src-<hash>" for a folder with uncommitted content

    @property
    def tag(self) -> str:
        return self.content_id[:12] if self.commit else self.content_id[:16]


def public_url(url: str) -> str:
    """The URL without any user:password part, fit for labels and logs."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def _git(*args: str, cwd: Path | None = None, check: bool = True, limits: GitLimits = GitLimits(),
         network: bool = False, watch: Path | None = None, url: str | None = None) -> subprocess.CompletedProcess:
    """git, isolated from the operator's configuration and bounded (gitenv.py); a network
    command names the `url` it connects to, so a host guard can check and pin it."""
    return run_git(args, limits, cwd=cwd, network=network, watch=watch, check=check, url=url)


def pick_ref(listing: str, ref: str | None) -> str | None:
    """From `git ls-remote` output, the commit a branch, tag or HEAD points to (pure)."""
    refs: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    if ref is None:
        return refs.get("HEAD")
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in refs:
            return refs[name]
    return None


class GitFetcher:
    """Keeps one bare mirror per URL under `cache_dir`, so later fetches are incremental."""

    def __init__(self, cache_dir: Path, limits: GitLimits = GitLimits()):
        self.cache_dir = cache_dir
        self.limits = limits

    def resolve(self, source: GitSource) -> Resolved:
        listing = self._ls_remote(source.url)
        sha = pick_ref(listing, source.ref)
        if sha is None and source.ref and is_sha(source.ref):
            sha = self._resolve_sha(source.url, source.ref)
        if sha is None:
            raise SourceError(
                f"ref {source.ref!r} not found in {public_url(source.url)} (looked for a branch, a tag and a commit)"
            )
        return Resolved(source, sha, sha)

    def export(self, resolved: Resolved, dest: Path) -> None:
        """Write the files of the resolved commit into the empty folder `dest` (no .git)."""
        assert isinstance(resolved.source, GitSource) and resolved.commit
        mirror = self._fetched(resolved)
        files, size = self._tree_stats(mirror, resolved.commit)
        if files > self.limits.max_files:
            raise SourceError(f"the repository has {files} files at this commit, more than this builder takes ({self.limits.max_files})")
        if size > self.limits.max_tree_bytes:
            raise SourceError(f"the repository holds {size // 2**20} MiB of files, more than this builder takes "
                              f"({self.limits.max_tree_bytes // 2**20} MiB)")
        with tempfile.TemporaryDirectory(prefix="dsbuild-archive-") as tmp:
            archive = Path(tmp) / "tree.tar"
            _git("archive", "--format=tar", f"--output={archive}", resolved.commit, cwd=mirror, limits=self.limits)
            import tarfile  # only here: a CLI start does not pay for it

            with tarfile.open(archive) as tar:
                extract_tree(tar, dest)

    def _fetched(self, resolved: Resolved) -> Path:
        assert isinstance(resolved.source, GitSource) and resolved.commit
        mirror = self._mirror(resolved.source.url)
        if _git("cat-file", "-e", f"{resolved.commit}^{{commit}}", cwd=mirror, check=False).returncode != 0:
            self._fetch(mirror, resolved.commit, resolved.source.url)
        return mirror

    def _tree_stats(self, mirror: Path, commit: str) -> tuple[int, int]:
        """(files, bytes) in a commit's tree, from `git ls-tree` (output capped)."""
        listing = _git("ls-tree", "-r", "-l", "-z", commit, cwd=mirror, limits=self.limits).stdout.decode(errors="replace")
        files = total = 0
        for entry in listing.split("\0"):
            fields = entry.split("\t", 1)[0].split()
            if len(fields) == 4:
                files += 1
                total += int(fields[3]) if fields[3].isdigit() else 0
        return files, total

    def commit_date(self, resolved: Resolved) -> str:
        mirror = self._fetched(resolved)
        return _git("show", "-s", "--format=%cI", resolved.commit or "", cwd=mirror).stdout.decode().strip()

    def tree_size(self, resolved: Resolved) -> int:
        """Bytes in the files of the resolved commit (fetched into the mirror when needed),
        so a service can refuse a repository that is too large before building it."""
        assert resolved.commit
        return self._tree_stats(self._fetched(resolved), resolved.commit)[1]

    def _ls_remote(self, url: str) -> str:
        try:
            return _git("ls-remote", "--", url, limits=self.limits, network=True, url=url).stdout.decode(errors="replace")
        except SourceError as err:
            raise SourceError(f"cannot read repository {public_url(url)}: {err}") from None

    def _mirror(self, url: str) -> Path:
        path = self.cache_dir / hashlib.sha256(url.encode()).hexdigest()[:24]
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            _git("init", "--bare", "--quiet", "--template=", str(path))
            _git("remote", "add", "origin", "--", url, cwd=path)
        mark_used(path)
        return path

    def _fetch(self, mirror: Path, sha: str, url: str) -> None:
        """A shallow fetch of the one commit where the server allows it (full shas only);
        otherwise all branches and tags, among which the commit must then be."""
        bounded = {"cwd": mirror, "limits": self.limits, "network": True, "watch": mirror, "url": url}
        try:
            if len(sha) == 40:  # --progress: git's object count, watched while it fetches (gitenv.py)
                shallow = _git("fetch", "--progress", "--no-tags", "--depth=1", "origin", "--", sha, check=False, **bounded)
                if shallow.returncode == 0:
                    return
            _git("fetch", "--progress", "--no-tags", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", **bounded)
        except GitFailed as err:
            if err.too_large:  # a half-fetched huge repository is not kept
                shutil.rmtree(mirror, ignore_errors=True)
            raise

    def _resolve_sha(self, url: str, sha: str) -> str | None:
        """A commit that no branch or tag names: fetch, then ask the mirror."""
        mirror = self._mirror(url)
        self._fetch(mirror, sha, url)
        done = _git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", cwd=mirror, check=False)
        return done.stdout.decode().strip() or None


def resolve_local(source: LocalSource, digests: FileDigests | None = None) -> Resolved:
    """A folder is named by its commit when it is the root of a clean git checkout,
    otherwise by a hash of its content (so an unchanged folder is not rebuilt). A folder
    with no `.git` of its own is no checkout's root, so git is not asked."""
    if not source.path.is_dir():
        raise SourceError(f"no such folder: {source.path}")
    if os.path.lexists(source.path / ".git"):
        top = _git("rev-parse", "--show-toplevel", cwd=source.path, check=False)
        if top.returncode == 0 and Path(top.stdout.decode().strip()).resolve() == source.path:
            status = _git("status", "--porcelain", cwd=source.path, check=False)
            head = _git("rev-parse", "--verify", "--quiet", "HEAD", cwd=source.path, check=False)
            if status.returncode == 0 and not status.stdout.strip() and head.returncode == 0:
                sha = head.stdout.decode().strip()
                return Resolved(source, sha, sha)
    return Resolved(source, None, "src-" + content_hash(source.path, digests))


def local_commit_date(path: Path, commit: str) -> str:
    return _git("show", "-s", "--format=%cI", commit, cwd=path).stdout.decode().strip()


def content_hash(root: Path, digests: FileDigests | None = None) -> str:
    """Every file's path, kind and content; files unchanged since `digests` last saw them
    are not read again (digests.py)."""
    digests = digests or FileDigests()
    digest = hashlib.sha256()
    for path in sorted(_walk(root)):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} {os.readlink(path)}\n".encode())
        else:
            mode = "x" if os.access(path, os.X_OK) else "f"
            digest.update(f"{mode} {rel} {digests.digest(path, rel)}\n".encode())
    digests.save()
    return digest.hexdigest()


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d != ".git" and d not in links]
        yield from (Path(dirpath, name) for name in filenames + links)


def extract_tree(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract a `git archive` into `dest` with tarfile's "data" filter, or, on a Python
    without it (Debian bookworm's 3.11.2, the hub image's), with `safe_members`' same rules."""
    import tarfile  # only here: a CLI start does not pay for it

    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:
        tar.extractall(dest, members=list(safe_members(tar, dest)))


def safe_members(tar: tarfile.TarFile, dest: Path):
    """The members as the "data" filter lets them through (pure over the tar's headers):
    files, folders and links that stay inside `dest`; no absolute or escaping names, no
    devices; setuid/setgid and group/other write bits dropped; owned by whoever extracts.
    Anything else stops the export with one line."""
    root = os.path.realpath(dest)

    def inside(path: str) -> bool:
        return os.path.commonpath([root, os.path.realpath(path)]) == root

    for member in tar.getmembers():
        name = member.name
        target = os.path.join(root, name)
        ok = not os.path.isabs(name) and inside(target) and (member.isfile() or member.isdir() or member.issym()
                                                            or member.islnk())
        if ok and member.issym():
            ok = not os.path.isabs(member.linkname) and inside(os.path.join(os.path.dirname(target), member.linkname))
        if ok and member.islnk():
            ok = not os.path.isabs(member.linkname) and inside(os.path.join(root, member.linkname))
        if not ok:
            raise SourceError(f"the repository's tree has an entry dsbuild does not extract: {name[:200]!r}")
        if not member.issym():
            member.mode &= 0o755
        member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
        yield member

