"""Launch links in mybinder.org's format, parsed and built. Pure: no I/O.

    /v2/gh/ORG/REPO/REF                      https://github.com/ORG/REPO at REF
    /v2/gl/GROUP%2FPROJECT/REF               https://gitlab.com/GROUP/PROJECT (also GROUP/PROJECT/REF)
    /v2/git/URL-ENCODED-URL/REF              any git URL whose scheme the admin allows

with `?labpath=FILE` (open FILE in JupyterLab) or `?urlpath=PATH` (open PATH on the
server; it wins over labpath, as on mybinder.org). `filepath` is read as labpath.
Everything is validated here: an unknown provider, a bad ref, a disallowed scheme or a
path that tries to leave the server is refused before anything is fetched or built."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

from dsbuild.builder.errors import SourceError
from dsbuild.builder.names import validate_ref
from dsbuild.builder.source import PROVIDERS, AnyGit, GitSource, HostedProvider, git_source

from .errors import BadLaunchPath, SchemeNotAllowed, UnknownProvider

MYBINDER_ONLY = ("gist", "zenodo", "figshare", "hydroshare", "dataverse", "ckan", "doi")
DEFAULT_SCHEMES = ("https",)
KNOWN_SCHEMES = ("https", "http", "git", "ssh", "file")
DEFAULT_OPEN = "lab"
MAX_PATH = 1024

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")  # a provider name worth echoing back
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URLPATH = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]*$")
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class LaunchSpec:
    """What a launch link asks for, validated."""

    provider: str
    url: str  # the git URL
    ref: str  # as asked; "HEAD" is the default branch
    open_path: str  # relative to the server's root, e.g. "lab/tree/notebooks/a.ipynb"
    open_arg: tuple[str, str] | None = None  # ("labpath", "notebooks/a.ipynb") as given

    @property
    def source(self) -> GitSource:
        return git_source(self.url, self.ref)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def display(self) -> str:
        return f"{self.url}@{self.ref}"

    def spec_path(self) -> str:
        """PROVIDER/SPEC, percent-encoded, as in /v2/ and /build/ URLs."""
        return PROVIDERS[self.provider].link_spec(self.url, self.ref)

    def query(self) -> str:
        """The query that reproduces `open_path`, or "" for the default."""
        return urlencode(dict([self.open_arg]), safe="/") if self.open_arg else ""


# -- parsing -------------------------------------------------------------------


def parse_launch(path: str, args: Mapping[str, str], allowed_schemes: Iterable[str] = DEFAULT_SCHEMES) -> LaunchSpec:
    """`path` is what follows /v2/ (still percent-encoded); `args` the decoded query."""
    if _CONTROL.search(path) or len(path) > 4 * MAX_PATH:
        raise BadLaunchPath("the launch link contains control characters or is too long")
    key, _, spec = path.partition("/")
    provider = PROVIDERS.get(key)
    if provider is None:
        raise UnknownProvider(_unknown_provider(key))
    try:
        url, ref = provider.link_source(spec)
    except SourceError as err:
        raise BadLaunchPath(str(err)) from None
    if isinstance(provider, AnyGit):
        url = check_git_url(url, tuple(allowed_schemes))
    path, arg = open_target(args)
    return LaunchSpec(key, url, _ref(ref), path, arg)


def _unknown_provider(provider: str) -> str:
    shown = provider if _NAME.match(provider) else "(invalid)"
    known = ", ".join(f"{key} ({p.title})" for key, p in PROVIDERS.items())
    if provider in MYBINDER_ONLY:
        return f"the {shown!r} provider of mybinder.org is not supported here; use one of: {known}"
    return f"unknown provider {shown!r}; use one of: {known}"


def check_git_url(url: str, allowed: Iterable[str]) -> str:
    """A plain git URL whose scheme is allowed: no credentials, query, fragment or spaces."""
    if _CONTROL.search(url) or any(ch.isspace() for ch in url) or len(url) > MAX_PATH:
        raise BadLaunchPath("the repository URL contains spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = tuple(allowed)
    if "://" not in url or scheme not in KNOWN_SCHEMES:
        raise BadLaunchPath(f"not a repository URL: {url!r}; give a URL such as https://host/org/repo.git")
    if scheme not in allowed:
        raise SchemeNotAllowed(f"{scheme}:// repositories are not enabled on this server (allowed: {', '.join(allowed)})")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadLaunchPath("the repository URL must not contain credentials, a query or a fragment")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadLaunchPath("file:// URLs must name an absolute path on this machine")
    elif not parts.hostname:
        raise BadLaunchPath(f"the repository URL has no host: {url!r}")
    if any(seg == ".." for seg in parts.path.split("/")):
        raise BadLaunchPath("the repository URL must not contain '..'")
    return url


def _ref(ref: str) -> str:
    ref = ref.strip("/") or "HEAD"
    try:
        return validate_ref(ref)
    except SourceError as err:
        raise BadLaunchPath(str(err)) from None


def open_target(args: Mapping[str, str]) -> tuple[str, tuple[str, str] | None]:
    """What to open once the server runs, relative to its root (no leading slash), and
    the query argument that asked for it."""
    urlpath = (args.get("urlpath") or "").strip()
    if urlpath:
        return check_urlpath(urlpath), ("urlpath", urlpath)
    labpath = (args.get("labpath") or args.get("filepath") or "").strip()
    if labpath:
        parts = check_file_path(labpath, "labpath")
        return "lab/tree/" + quote("/".join(parts), safe="/"), ("labpath", labpath)
    return DEFAULT_OPEN, None


def check_file_path(path: str, what: str) -> list[str]:
    """A file or folder inside the repository: relative, no '..', no control characters."""
    if _CONTROL.search(path) or "\\" in path or len(path) > MAX_PATH:
        raise BadLaunchPath(f"{what} contains control characters or backslashes")
    if path.startswith("/") or path.startswith("~") or _SCHEME_PREFIX.match(path):
        raise BadLaunchPath(f"{what} must be a path inside the repository, not {path!r}")
    parts = path.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadLaunchPath(f"{what} must not contain '.', '..' or empty parts: {path!r}")
    return parts


def check_urlpath(urlpath: str) -> str:
    """A path on the single-user server, like lab/tree/a.ipynb or /voila/render/b.ipynb.
    One leading slash is accepted (mybinder.org's links often have it); '//', schemes,
    '..' (also percent-encoded) and control characters are refused."""
    if _CONTROL.search(urlpath) or len(urlpath) > MAX_PATH:
        raise BadLaunchPath("urlpath contains control characters or is too long")
    if not _URLPATH.match(urlpath):
        raise BadLaunchPath(f"urlpath may hold only URL characters (encode spaces as %20): {urlpath!r}")
    path = urlpath[1:] if urlpath.startswith("/") else urlpath
    head = re.split(r"[?#]", path, maxsplit=1)[0]
    if path.startswith("/") or _SCHEME_PREFIX.match(head.split("/")[0]):
        raise BadLaunchPath(f"urlpath must be a path on the server, not another site: {urlpath!r}")
    for segment in head.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded or _CONTROL.search(decoded):
            raise BadLaunchPath(f"urlpath must not leave the server's root: {urlpath!r}")
    return path or DEFAULT_OPEN


# -- building links ------------------------------------------------------------


def spec_for_repository(repo: str, ref: str, path: str = "", path_kind: str = "file",
                        allowed_schemes: Iterable[str] = DEFAULT_SCHEMES) -> LaunchSpec:
    """The home page's form: a repository URL (or gh:ORG/REPO, gl:GROUP/PROJECT), a ref
    and a path to open (a file for labpath, or a URL path) -> a validated LaunchSpec."""
    repo = repo.strip()
    ref = ref.strip() or "HEAD"
    query = {("labpath" if path_kind == "file" else "urlpath"): path} if path.strip() else {}
    for provider in PROVIDERS.values():
        try:
            url = provider.detect(repo) if isinstance(provider, HostedProvider) else None
        except SourceError as err:
            raise BadLaunchPath(str(err)) from None
        if url is not None:
            return parse_launch(provider.link_spec(url, ref), query, allowed_schemes)
    return parse_launch(PROVIDERS["git"].link_spec(repo, ref), query, allowed_schemes)


def launch_link(base_url: str, spec: LaunchSpec) -> str:
    """The full launch link; `base_url` is this service's public URL ending in '/'."""
    query = spec.query()
    return f"{base_url}v2/{spec.spec_path()}" + (f"?{query}" if query else "")


def stream_path(spec: LaunchSpec) -> str:
    """The event stream for this launch, relative to the service's base URL."""
    query = spec.query()
    return f"build/{spec.spec_path()}" + (f"?{query}" if query else "")


def badge_markdown(base_url: str, link: str) -> str:
    return f"[![Launch with dsbuild]({base_url}badge.svg)]({link})"
