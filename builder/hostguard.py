"""Which hosts git may connect to, checked and pinned for each network git command.

A public builder must not let a repository URL point git into its own network
(loopback, private ranges, link-local such as 169.254.169.254). Checking the name once
and letting git resolve it again is not enough: a name whose DNS answer changes between
the two lookups (DNS rebinding) would pass the check with a public address and then
connect to an internal one. So `HostGuard.pin(url)` resolves the host ONCE, refuses it
when any address is neither globally routable nor in an allowed network, and returns the
git options that make git (libcurl) connect to exactly those addresses
(`http.curloptResolve=HOST:PORT:ADDR,...`). Each network git command is pinned this way.

Only http(s) can be pinned (libcurl takes the addresses); `file` has no host; other
network transports (ssh, git) are refused while a guard is in force.

`refused()` is pure and is the one rule for what counts as an internal address (the
launch service's early check uses it too); `system_resolver` is the DNS edge."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import SourceError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
PINNABLE = {"http": 80, "https": 443}
REFUSED_HOST = "the repository's host is not one this builder fetches from"


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


class HostRefused(SourceError):
    """The URL's host may not be fetched from (str() is a fixed sentence, `detail` why)."""

    def __init__(self, detail: str):
        super().__init__(REFUSED_HOST)
        self.detail = detail


def curl_resolve(host: str, port: int, addresses: Iterable[str]) -> str:
    """libcurl's CURLOPT_RESOLVE entry HOST:PORT:ADDR[,ADDR] (IPv6 in brackets) (pure)."""
    spelled = [f"[{a}]" if ":" in a else a for a in addresses]
    return f"{host}:{port}:{','.join(spelled)}"


@dataclass(frozen=True)
class HostGuard:
    """Refuse internal hosts (unless in `allowed`) and pin git to the checked addresses."""

    allowed: tuple[Network, ...] = ()
    resolve: Resolver = system_resolver

    def pin(self, url: str) -> tuple[str, ...]:
        """git options that pin `url`'s host to the addresses checked now; HostRefused if
        the host may not be reached (or cannot be pinned)."""
        parts = urlsplit(url)
        if parts.scheme == "file":
            return ()
        if parts.scheme not in PINNABLE or not parts.hostname:
            raise HostRefused(f"{parts.scheme or 'this'} URLs cannot be pinned to a checked address")
        host, port = parts.hostname, parts.port or PINNABLE[parts.scheme]
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError) as err:
            raise HostRefused(f"{host} does not resolve ({err})") from None
        bad = refused(addresses, self.allowed)
        if bad or not addresses:
            raise HostRefused(f"{host} resolves to {', '.join(bad) or 'nothing'}, not a public address")
        if addresses == [host]:  # an address already: nothing to resolve later
            return ()
        return ("-c", f"http.curloptResolve={curl_resolve(host, port, addresses)}")
