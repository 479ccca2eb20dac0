"""Which git hosts a public service may fetch from, and what a requester is told.

A launch link names any URL, so without a check anyone could make the service's git
reach loopback (the hub's API, the proxy's API), private networks (RFC 1918, IPv6
ULA, CGNAT) or link-local addresses (169.254.169.254, a cloud's metadata service). The
host is resolved first and refused when any of its addresses is not globally routable,
unless an admin allowed that network (`--allow-host-network CIDR`; `file://` has no
host and is governed by `--allow-scheme file`).

The requester learns only that the repository cannot be read: the same words for a
host that does not resolve, one on a refused network, and one that does not answer,
so the service cannot be used to map the network behind it. git's own error lines
(which name addresses, proxies and certificates) go to the service's log only.

The rule for what is internal is builder/hostguard.py's `refused`. `check_host` is the
early check that gives a launch page its answer; the git edge checks again for every
network command and pins git to the addresses it checked (`HostGuard`, passed in the
service's GitLimits), so a name whose DNS answer changes between the lookups (DNS
rebinding) cannot turn git towards an internal address."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from dsbuild.builder.hostguard import Resolver, refused, system_resolver

from .errors import RepoNotFound
from .limits import Network

log = logging.getLogger("dsbuild.launch")
__all__ = ["UNREADABLE", "check_host", "refused", "safe_source_message", "system_resolver"]
UNREADABLE = "cannot read repository {url}: it does not exist, is not public, or its host is not one this server fetches from"
_REF_NOT_FOUND = re.compile(r"^ref '[^'\n]{1,300}' not found in \S+ \(looked for a branch, a tag and a commit\)$")
_SIZE_LIMIT = re.compile(r"^the repository (has \d+ files|holds \d+ MiB of files) at this commit, more than this builder takes "
                         r"\(\d+( MiB)?\)$|^the repository (has \d+ files|holds \d+ MiB of files), more than this builder takes "
                         r"\(\d+( MiB)?\)$|^the repository has \d+ objects to fetch, more than this builder takes \(\d+\)$")


def check_host(url: str, allowed: tuple[Network, ...], shown: str, resolve: Resolver = system_resolver) -> None:
    """Raise RepoNotFound (saying nothing about why) if `url`'s host may not be fetched from."""
    parts = urlsplit(url)
    if parts.scheme == "file" or not parts.hostname:
        return
    try:
        addresses = resolve(parts.hostname, parts.port or 443)
    except (OSError, UnicodeError) as err:
        log.info("refused %s: %s does not resolve (%s)", url, parts.hostname, err)
        raise RepoNotFound(UNREADABLE.format(url=shown)) from None
    bad = refused(addresses, allowed)
    if bad or not addresses:
        log.warning("refused %s: %s resolves to %s, not a public address (--allow-host-network allows networks)",
                    url, parts.hostname, ", ".join(bad) or "nothing")
        raise RepoNotFound(UNREADABLE.format(url=shown))


def safe_source_message(message: str, shown: str) -> str:
    """What a requester may see of a git failure: 'ref not found' and the builder's size
    limits as they are, else the same line as for a refused host; the original goes to the log."""
    if (_REF_NOT_FOUND.match(message) and shown in message) or _SIZE_LIMIT.match(message):
        return message
    log.info("git failed for %s: %s", shown, message)
    return UNREADABLE.format(url=shown)
