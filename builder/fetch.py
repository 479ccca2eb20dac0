"""The git edge: resolve a ref to a commit, export a commit's files, identify local folders.

git is always called with an argument list (never a shell) and `--` before URLs and refs."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import SourceError
from .names import is_sha
from .source import GitSource, LocalSource, Source

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


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


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV}
    try:
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=check, timeout=600)
    except FileNotFoundError:
        raise SourceError("git is not installed; install it (apt-get install git)") from None
    except subprocess.CalledProcessError as err:
        last = (err.stderr or b"").decode(errors="replace").strip().splitlines()
        raise SourceError(last[-1] if last else f"git {args[0]} failed") from None


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

    def __init__(self, cache_dir: Path):
        self.cache_dir = cache_dir

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
        mirror = self._mirror(resolved.source.url)
        if _git("cat-file", "-e", f"{resolved.commit}^{{commit}}", cwd=mirror, check=False).returncode != 0:
            self._fetch(mirror, resolved.commit)
        archive = _git("archive", "--format=tar", resolved.commit, cwd=mirror).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")

    def commit_date(self, resolved: Resolved) -> str:
        assert isinstance(resolved.source, GitSource) and resolved.commit
        mirror = self._mirror(resolved.source.url)
        if _git("cat-file", "-e", f"{resolved.commit}^{{commit}}", cwd=mirror, check=False).returncode != 0:
            self._fetch(mirror, resolved.commit)
        return _git("show", "-s", "--format=%cI", resolved.commit, cwd=mirror).stdout.decode().strip()

    def tree_size(self, resolved: Resolved) -> int:
        """Bytes in the files of the resolved commit (fetched into the mirror when needed),
        so a service can refuse a repository that is too large before building it."""
        assert isinstance(resolved.source, GitSource) and resolved.commit
        mirror = self._mirror(resolved.source.url)
        if _git("cat-file", "-e", f"{resolved.commit}^{{commit}}", cwd=mirror, check=False).returncode != 0:
            self._fetch(mirror, resolved.commit)
        listing = _git("ls-tree", "-r", "-l", "-z", resolved.commit, cwd=mirror).stdout.decode(errors="replace")
        total = 0
        for entry in listing.split("\0"):
            fields = entry.split("\t", 1)[0].split()
            if len(fields) == 4 and fields[3].isdigit():
                total += int(fields[3])
        return total

    def _ls_remote(self, url: str) -> str:
        try:
            return _git("ls-remote", "--", url).stdout.decode()
        except SourceError as err:
            raise SourceError(f"cannot read repository {public_url(url)}: {err}") from None

    def _mirror(self, url: str) -> Path:
        path = self.cache_dir / hashlib.sha256(url.encode()).hexdigest()[:24]
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            _git("init", "--bare", "--quiet", str(path))
            _git("remote", "add", "origin", "--", url, cwd=path)
        return path

    def _fetch(self, mirror: Path, sha: str) -> None:
        """A shallow fetch of the one commit where the server allows it (full shas only);
        otherwise all branches and tags, among which the commit must then be."""
        if len(sha) == 40:
            shallow = _git("fetch", "--quiet", "--depth=1", "origin", "--", sha, cwd=mirror, check=False)
            if shallow.returncode == 0:
                return
        _git("fetch", "--quiet", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", cwd=mirror)

    def _resolve_sha(self, url: str, sha: str) -> str | None:
        """A commit that no branch or tag names: fetch, then ask the mirror."""
        mirror = self._mirror(url)
        self._fetch(mirror, sha)
        done = _git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", cwd=mirror, check=False)
        return done.stdout.decode().strip() or None


def resolve_local(source: LocalSource) -> Resolved:
    """A folder is named by its commit when it is the root of a clean git checkout,
    otherwise by a hash of its content (so an unchanged folder is not rebuilt)."""
    if not source.path.is_dir():
        raise SourceError(f"no such folder: {source.path}")
    top = _git("rev-parse", "--show-toplevel", cwd=source.path, check=False)
    if top.returncode == 0 and Path(top.stdout.decode().strip()).resolve() == source.path:
        status = _git("status", "--porcelain", cwd=source.path, check=False)
        head = _git("rev-parse", "--verify", "--quiet", "HEAD", cwd=source.path, check=False)
        if status.returncode == 0 and not status.stdout.strip() and head.returncode == 0:
            sha = head.stdout.decode().strip()
            return Resolved(source, sha, sha)
    return Resolved(source, None, "src-" + content_hash(source.path))


def local_commit_date(path: Path, commit: str) -> str:
    return _git("show", "-s", "--format=%cI", commit, cwd=path).stdout.decode().strip()


def content_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(_walk(root)):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L {rel} {os.readlink(path)}\n".encode())
        else:
            mode = "x" if os.access(path, os.X_OK) else "f"
            digest.update(f"{mode} {rel} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d != ".git" and d not in links]
        yield from (Path(dirpath, name) for name in filenames + links)
