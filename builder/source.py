"""What the user asked to build: a local folder or a git repository at a ref.

Pure: parsing and validation only. Fetching is in `fetch.py`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import SourceError

# Shorthands in mybinder.org's spirit: provider prefix -> URL prefix.
SHORTHANDS = {
    "gh": "https://github.com/",
    "gl": "https://gitlab.com/",
}
_URL_SCHEMES = ("https", "http", "file", "ssh", "git")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
# A conservative subset of what `git check-ref-format` allows, plus full or short shas.
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+@-]{0,254}$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_NAME_PART = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class LocalSource:
    """A folder on this machine, built as it is on disk (uncommitted changes included)."""

    path: Path

    @property
    def display(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class GitSource:
    """A git repository (any URL git can clone) at a ref: branch, tag or commit sha."""

    url: str
    ref: str | None = None  # None: the remote's default branch (HEAD)

    @property
    def display(self) -> str:
        return f"{self.url}@{self.ref or 'HEAD'}"

    @property
    def name(self) -> str:
        path = urlsplit(self.url).path if "://" in self.url else self.url.split(":", 1)[-1]
        last = path.rstrip("/").rsplit("/", 1)[-1]
        return last[:-4] if last.endswith(".git") else last


Source = LocalSource | GitSource


def validate_ref(ref: str) -> str:
    """A ref is passed to git as an argument, never to a shell; still, refuse anything that
    could be read as an option or is not a plausible ref name."""
    if not _REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")) or "//" in ref:
        raise SourceError(f"not a valid git ref: {ref!r}")
    return ref


def parse_source(text: str, ref: str | None = None) -> Source:
    """Turn the user's REPO argument (and --ref) into a Source.

    `gh:org/repo` and `gl:org/repo` are shorthands; URLs with a scheme or `user@host:path`
    are git; anything else is a local folder. A local folder with --ref is read as a git
    repository at that ref."""
    text = text.strip()
    if not text or any(ch.isspace() or ord(ch) < 32 for ch in text) or text.startswith("-"):
        raise SourceError(f"not a repository URL or folder: {text!r}")
    if ref is not None:
        ref = validate_ref(ref)
    prefix, sep, rest = text.partition(":")
    if sep and prefix in SHORTHANDS:
        if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", rest):
            raise SourceError(f"{prefix}: shorthand wants ORG/REPO, got {rest!r}")
        return GitSource(SHORTHANDS[prefix] + rest, ref)
    scheme = urlsplit(text).scheme
    if scheme in _URL_SCHEMES:
        return GitSource(text, ref)
    if scheme and len(scheme) > 1 and "://" in text:
        raise SourceError(f"unsupported URL scheme {scheme!r}; use one of {', '.join(_URL_SCHEMES)}")
    if _SCP_LIKE.match(text):
        return GitSource(text, ref)
    path = Path(text).expanduser().resolve()
    if ref is not None:
        return GitSource(path.as_uri(), ref)
    return LocalSource(path)


def is_sha(ref: str) -> bool:
    return bool(_SHA.match(ref))


def validate_subdir(subdir: str) -> str:
    """--subdir: a relative path inside the repository ('/'-separated, no '..')."""
    parts = [p for p in subdir.strip("/").split("/") if p not in ("", ".")]
    if subdir.startswith("/") or not parts or any(p == ".." or p.startswith("-") for p in parts) or "\\" in subdir:
        raise SourceError(f"--subdir wants a folder inside the repository, like docs/binder; got {subdir!r}")
    if any(ch.isspace() or ord(ch) < 32 for ch in subdir):
        raise SourceError(f"--subdir: unexpected characters in {subdir!r}")
    return "/".join(parts)


def image_name(source: Source, subdir: str | None = None) -> str:
    """A valid Docker repository name for the source: `dsbuild-<repo name>[-<subdir>]`."""
    slug = _NAME_PART.sub("-", (source.name + (f"-{subdir}" if subdir else "")).lower()).strip("-") or "repo"
    if len(slug) > 60:
        slug = slug[:50].rstrip("-") + "-" + hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"dsbuild-{slug}"


_IMAGE_REF = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def validate_image_ref(ref: str, what: str = "image") -> str:
    """Docker image references go into `FROM` lines and command arguments: validate them."""
    if not _IMAGE_REF.match(ref):
        raise SourceError(f"not a valid {what} reference: {ref!r}")
    return ref
