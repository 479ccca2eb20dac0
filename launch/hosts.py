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

`refused(addresses, allowed)` is pure; `check_host` resolves names (the DNS edge).
git resolves the name again when it fetches; a name whose records change between the
two lookups (DNS rebinding) is not caught here: a firewall in front of the service's
egress is still the operator's job (docs/security.md)."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from .errors import RepoNotFound
from .limits import Network

log = logging.getLogger("dsbuild.launch")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
UNREADABLE = "cannot read repository {url}: it does not exist, is not public, or its host is not one this server fetches from"
_REF_NOT_FOUND = re.compile(r"^ref '[^'\n]{1,300}' not found in \S+ \(looked for a branch, a tag and a commit\)$")
_SIZE_LIMIT = re.compile(r"^the repository (has \d+ files|holds \d+ MiB of files) at this commit, more than this builder takes "
                         r"\(\d+( MiB)?\)$|^the repository (has \d+ files|holds \d+ MiB of files), more than this builder takes "
                         r"\(\d+( MiB)?\)$")


def _plain(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def refused(addresses: Iterable[str], allowed: tuple[Network, ...] = ()) -> list[str]:
    """The addresses that are neither globally routable nor in an allowed network (pure)."""
    bad = []
    for text in addresses:
        try:
            address = _plain(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            bad.append(text)
            continue
        if any(address.version == net.version and address in net for net in allowed):
            continue
        if not address.is_global or address.is_multicast:
            bad.append(text)
    return bad


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


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
