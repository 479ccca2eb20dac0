"""What the user asked to build, and where it comes from: sources and providers. Pure.

A `Source` is a local folder or a git repository at a ref. A `Provider` (one small class
each, like BinderHub's repoproviders and repo2docker's content providers) owns how its
repositories are written: its CLI shorthand (`gh:ORG/REPO`), its launch-link spec
(`/v2/gh/ORG/REPO/REF`) in both directions, and its URLs. Adding a provider is one class
added to `PROVIDERS`. Names, refs, tags and labels are in names.py; fetching is fetch.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .errors import SourceError
from .names import validate_ref

_URL_SCHEMES = ("https", "http", "file", "ssh", "git")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


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


def git_source(url: str, ref: str | None) -> GitSource:
    """A GitSource from a URL and a ref as links and forms give it ("HEAD" or "" for the default)."""
    return GitSource(url, None if ref in (None, "", "HEAD") else validate_ref(ref))


# -- providers -----------------------------------------------------------------


def _segments(text: str, what: str) -> list[str]:
    parts = text.split("/")
    for part in parts:
        if part in (".", "..") or not _SEGMENT.match(part):
            raise SourceError(f"{what} must be letters, digits, '.', '_' or '-' between slashes, got {text!r}")
    return parts


class Provider:
    """Where repositories come from. `key` is the launch-link prefix and the CLI shorthand."""

    key = ""
    title = ""

    def link_source(self, spec: str) -> tuple[str, str]:
        """A launch link's spec after /v2/KEY/ (percent-encoded) -> (git URL, ref as given)."""
        raise NotImplementedError

    def link_spec(self, url: str, ref: str) -> str:
        """The reverse: KEY/SPEC/REF, percent-encoded, for /v2/ and /build/ links."""
        raise NotImplementedError

    def shorthand(self, text: str) -> str | None:
        """The git URL when `text` is this provider's shorthand (`gh:ORG/REPO`), else None."""
        return None

    def detect(self, text: str) -> str | None:
        """The git URL when `text` (the home page's repository field) is this provider's
        shorthand or one of its URLs; None when it is not this provider's."""
        return self.shorthand(text)


class HostedProvider(Provider):
    """A forge at one host whose repositories are ORG/REPO (GitHub) or GROUP/.../PROJECT
    (GitLab, where links encode the path as one segment)."""

    host = ""
    nested = False  # GROUP/SUBGROUP/PROJECT paths

    def url(self, path: str) -> str:
        parts = _segments(path, "ORG/REPO")
        if len(parts) < 2 or (len(parts) > 2 and not self.nested):
            raise SourceError(f"{self.key}: wants {'GROUP/PROJECT' if self.nested else 'ORG/REPO'}, got {path!r}")
        return self.host + "/".join(parts)

    def link_source(self, spec: str) -> tuple[str, str]:
        if self.nested:
            first, _, rest = spec.partition("/")
            path = unquote(first)
            if "/" not in path:  # unencoded GROUP/PROJECT/REF
                second, _, rest = rest.partition("/")
                path = f"{path}/{unquote(second)}"
            return self.url(path), unquote(rest)
        parts = spec.split("/", 2)
        if len(parts) < 2:
            raise SourceError(f"{self.title} links are /v2/{self.key}/ORG/REPO/REF, got /v2/{self.key}/{spec}")
        return self.url(unquote("/".join(parts[:2]))), unquote(parts[2]) if len(parts) == 3 else ""

    def link_spec(self, url: str, ref: str) -> str:
        path = url.removeprefix(self.host)
        return f"{self.key}/{quote(path, safe='' if self.nested else '/')}/{quote(ref, safe='/')}"

    def shorthand(self, text: str) -> str | None:
        prefix = f"{self.key}:"
        return self.url(text.removeprefix(prefix)) if text.startswith(prefix) else None

    def detect(self, text: str) -> str | None:
        for prefix in (self.host, f"{self.key}:"):
            if text.startswith(prefix):
                return self.url(text.removeprefix(prefix).strip("/").removesuffix(".git"))
        return None


class GitHub(HostedProvider):
    key, title, host = "gh", "GitHub", "https://github.com/"


class GitLab(HostedProvider):
    key, title, host, nested = "gl", "GitLab", "https://gitlab.com/", True


class AnyGit(Provider):
    """Any git URL, percent-encoded as one segment. Which schemes and hosts a service
    accepts is its own policy (launch/routes.py), not the provider's."""

    key, title = "git", "Git repository"

    def link_source(self, spec: str) -> tuple[str, str]:
        first, _, rest = spec.partition("/")
        url = unquote(first)
        if not url:
            raise SourceError("git links are /v2/git/URL-ENCODED-URL/REF; the URL is missing")
        return url, unquote(rest)

    def link_spec(self, url: str, ref: str) -> str:
        return f"{self.key}/{quote(url, safe='')}/{quote(ref, safe='/')}"

    def shorthand(self, text: str) -> str | None:
        scheme = urlsplit(text).scheme
        if scheme in _URL_SCHEMES or _SCP_LIKE.match(text):
            return text
        if scheme and len(scheme) > 1 and "://" in text:
            raise SourceError(f"unsupported URL scheme {scheme!r}; use one of {', '.join(_URL_SCHEMES)}")
        return None


PROVIDERS: dict[str, Provider] = {p.key: p for p in (GitHub(), GitLab(), AnyGit())}


def provider_of(url: str) -> Provider:
    """The provider whose URLs `url` is (the generic git provider for any other)."""
    return next((p for p in PROVIDERS.values() if isinstance(p, HostedProvider) and url.startswith(p.host)),
                PROVIDERS["git"])


# -- the CLI's REPO argument ------------------------------------------------------


def parse_source(text: str, ref: str | None = None) -> Source:
    """Turn the user's REPO argument (and --ref) into a Source.

    A provider's shorthand (`gh:org/repo`, `gl:group/project`) or a URL with a scheme or
    `user@host:path` is git; anything else is a local folder. A local folder with --ref is
    read as a git repository at that ref."""
    text = text.strip()
    if not text or any(ch.isspace() or ord(ch) < 32 for ch in text) or text.startswith("-"):
        raise SourceError(f"not a repository URL or folder: {text!r}")
    if ref is not None:
        ref = validate_ref(ref)
    for provider in PROVIDERS.values():
        url = provider.shorthand(text)
        if url is not None:
            return GitSource(url, ref)
    path = Path(text).expanduser().resolve()
    if ref is not None:
        return GitSource(path.as_uri(), ref)
    return LocalSource(path)
def validate_subdir(subdir: str) -> str:
    """--subdir: a relative path inside the repository ('/'-separated, no '..')."""
    parts = [p for p in subdir.strip("/").split("/") if p not in ("", ".")]
    if subdir.startswith("/") or not parts or any(p == ".." or p.startswith("-") for p in parts) or "\\" in subdir:
        raise SourceError(f"--subdir wants a folder inside the repository, like docs/binder; got {subdir!r}")
    if any(ch.isspace() or ord(ch) < 32 for ch in subdir):
        raise SourceError(f"--subdir: unexpected characters in {subdir!r}")
    return "/".join(parts)
