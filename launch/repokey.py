"""One key per repository, however its URL is spelled. Pure.

Limits (launches per repository) and build de-duplication count by this key, so
`https://Host:443/org/b`, `https://host/org/b/`, `https://host/org/b.git` and
`https://host//org/b.git/` are one repository. What changes the key:

- scheme and host in lower case, a trailing dot of the host dropped, IDNA hosts as punycode;
- the scheme's default port dropped (https 443, http 80, ssh 22, git 9418);
- repeated and trailing slashes dropped, then one `.git` suffix;
- percent-encoding made canonical (`%7e` and `~` are one path);
- the path in lower case on hosts whose names are case-insensitive (github.com, gitlab.com);
- `file://localhost/p` is `file:///p`.

The key is for counting, not fetching: the URL as given is what git fetches."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
CASE_INSENSITIVE_HOSTS = frozenset({"github.com", "gitlab.com"})
_SLASHES = re.compile(r"/{2,}")
_PATH_SAFE = "/~!$&'()*+,;=:@"


def _host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _path(path: str) -> str:
    path = quote(unquote(path), safe=_PATH_SAFE)
    path = _SLASHES.sub("/", path).rstrip("/")
    path = path.removesuffix(".git").rstrip("/")
    return path or "/"


def repo_key(url: str) -> str:
    """The canonical spelling of a repository URL (already checked by routes.check_git_url)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    path = _path(parts.path)
    if scheme == "file":
        return f"file://{path}"
    host = _host(parts.hostname or "")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if host in CASE_INSENSITIVE_HOSTS:
        path = path.lower()
    return f"{scheme}://{netloc}{path}"
