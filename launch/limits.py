"""Who a client is, and how many launches it may start. Pure (the clock is passed in).

A client is the address the request came from: an IPv4 address, or the /64 network of
an IPv6 address (one host usually holds a whole /64). Behind a reverse proxy every
request comes from the proxy, so the address is read from `X-Forwarded-For` only when
the connection comes from a trusted proxy (`--trusted-proxy CIDR`, none by default):
the right-most address in the header that is not itself a trusted proxy is the
client. A client cannot choose its key by sending the header itself.

`RateLimiter` counts launches per client in a sliding window (mybinder.org's default:
10 an hour), on the wall clock, so that ratejournal.py can keep the counts across a
restart of the service. It remembers at most `max_clients` clients; when more arrive, the ones
whose last launch is oldest are forgotten, so its memory is bounded whatever the
number of addresses an attacker holds."""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per\s+)\s*(second|minute|hour|day|s|m|h|d)\s*$", re.I)
_UNITS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """`count` launches per `seconds`; count 0 means no limit."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """"10/hour", "100/day", "5/m", "0" (no limit)."""
        if text.strip() == "0":
            return cls(0, 3600)
        match = _RATE.match(text)
        if not match:
            raise ValueError(f"a rate is COUNT/UNIT with UNIT one of second, minute, hour, day (e.g. 10/hour), got {text!r}")
        return cls(int(match.group(1)), _UNITS[match.group(2).lower()])

    def __str__(self) -> str:
        if not self.count:
            return "no limit"
        unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(self.seconds, f"{self.seconds}s")
        return f"{self.count} per {unit}"


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses -> networks; ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {value!r}") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_key(remote_ip: str, headers: Mapping[str, str], proxies: tuple[Network, ...] = ()) -> str:
    """The key a client's launches are counted under."""
    address = _address(remote_ip)
    if address is not None and proxies and _trusted(address, proxies):
        hops = [h for h in (headers.get("X-Forwarded-For") or "").split(",") if h.strip()]
        for hop in reversed(hops):
            forwarded = _address(hop)
            if forwarded is None:
                break  # a garbled header: count the proxy itself
            address = forwarded
            if not _trusted(forwarded, proxies):
                break
    if address is None:
        return remote_ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimiter:
    def __init__(self, rate: Rate, max_clients: int = 100_000):
        self.rate = rate
        self.max_clients = max_clients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - self.rate.seconds:
            times.popleft()
        return times

    def retry_after(self, client: str, now: float) -> float | None:
        """None if `client` may launch now, else the seconds until it may."""
        if not self.rate.count:
            return None
        times = self._recent(client, now)
        if len(times) < self.rate.count:
            return None
        return max(1.0, times[0] + self.rate.seconds - now)

    def take(self, client: str, now: float) -> float | None:
        """Count one launch of `client`; like `retry_after`, and counts nothing when refused."""
        wait = self.retry_after(client, now)
        if wait is not None or not self.rate.count:
            return wait
        self.count(client, now)
        return None

    def count(self, client: str, at: float) -> None:
        """Record one launch of `client` at `at` (also: launches read back after a restart)."""
        times = self._recent(client, at)
        times.append(at)
        self._seen[client] = times
        self._seen.move_to_end(client)
        while len(self._seen) > self.max_clients:
            self._seen.popitem(last=False)

    def clients(self) -> int:
        return len(self._seen)
