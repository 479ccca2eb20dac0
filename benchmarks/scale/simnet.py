"""Simulated servers that answer HTTP, for the run through the hub (hubrun.py).

kwok's pods run no containers: they get an address (from their node's
`spec.podCIDR`) and nothing listens there, so JupyterHub's check that a server
is up never passes. Here one small asyncio HTTP server on this machine answers
as every simulated user's server:

- `PodNetwork` picks a /16 that no route of this machine uses (never kwok's
  default 10.244.0.0/16 of the standing test nodes, never the real node's
  bridge), gives the benchmark's nodes their podCIDRs from it, and makes the
  whole block local (`ip route add local CIDR dev lo`). Traffic to a simulated
  pod's address then stays on this machine. The route is removed at the end
  (also on Ctrl-C or SIGTERM: the caller's `finally`), and a run that was
  killed outright leaves its CIDR and pid in .run/scale-hub/routes: the next
  run removes it once that pid is gone (never a route of a run still going).
- `StubServer` listens on one port and answers only connections made to an
  address in that block: GET anything -> 200 with JSON naming the user of the
  path, the address it was reached at, and JupyterHub's version header (what
  the hub's `wait_up` and the proxy touch of a single-user server).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import subprocess
from pathlib import Path

CANDIDATES = [f"10.{n}.0.0/16" for n in range(250, 256)]
STUB_HEADER = "X-Dsbuild-Bench-Stub"
USER_PATH = re.compile(r"^/user/([^/?]+)/")
MAX_HEAD = 16 * 1024


class PodNetworkError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise PodNetworkError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def routed_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination in any routing table of this machine (default route excluded)."""
    found = []
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        words = line.split()
        if words and words[0] in ("local", "broadcast", "unreachable", "blackhole", "prohibit"):
            words = words[1:]
        if not words or words[0] == "default":
            continue
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_network(words[0], strict=False))
    return found


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PodNetwork:
    """A /16 of simulated pod addresses that are local to this machine while it lives."""

    def __init__(self, state_dir: Path):
        self.state = state_dir / "routes"
        self.cidr: ipaddress.IPv4Network | None = None

    def open(self) -> ipaddress.IPv4Network:
        self._remove_leftovers()
        used = routed_networks()
        free = [ipaddress.ip_network(c) for c in CANDIDATES]
        free = [c for c in free if not any(c.overlaps(u) for u in used)]
        if not free:
            raise PodNetworkError(f"every candidate pod CIDR ({', '.join(CANDIDATES)}) overlaps a route here")
        cidr = free[0]
        self.state.parent.mkdir(parents=True, exist_ok=True)
        with self.state.open("a") as f:  # recorded before it exists: a kill between leaves no orphan
            f.write(f"{cidr} {os.getpid()}\n")
        _ip("route", "add", "local", str(cidr), "dev", "lo")
        self.cidr = cidr
        return cidr

    def node_cidrs(self, count: int) -> list[str]:
        """One /24 per node (kwok hands out pod addresses from the node's podCIDR)."""
        assert self.cidr is not None
        subnets = list(self.cidr.subnets(new_prefix=24))
        if count > len(subnets):
            raise PodNetworkError(f"{count} nodes need more than the {len(subnets)} /24s of {self.cidr}")
        return [str(s) for s in subnets[:count]]

    def close(self) -> None:
        if self.cidr is not None:
            self._remove(str(self.cidr))
            self.cidr = None

    def present(self) -> bool:
        return self.cidr is not None and any(n == self.cidr for n in routed_networks())

    def _records(self) -> list[tuple[str, int]]:
        records = []
        for line in self.state.read_text().splitlines() if self.state.exists() else []:
            cidr, _, pid = line.partition(" ")
            records.append((cidr, int(pid) if pid.strip().isdigit() else 0))
        return records

    def _remove(self, cidr: str) -> None:
        _ip("route", "del", "local", cidr, "dev", "lo", check=False)
        left = [(c, pid) for c, pid in self._records() if c != cidr]
        self.state.write_text("".join(f"{c} {pid}\n" for c, pid in left))

    def _remove_leftovers(self) -> None:
        for cidr, pid in self._records():
            if not _alive(pid):
                self._remove(cidr)


class StubServer:
    """Answers as every simulated user's single-user server, at addresses in `cidr` only."""

    def __init__(self, cidr: ipaddress.IPv4Network, hub_version: str):
        self.cidr = cidr
        self.hub_version = hub_version
        self.requests = 0
        self.refused = 0
        self.addresses: set[str] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connection, "0.0.0.0", 0, backlog=2048)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        local = writer.get_extra_info("sockname")[0]
        try:
            if ipaddress.ip_address(local) not in self.cidr:  # only as a simulated pod
                self.refused += 1
                return
            while await self._answer(reader, writer, local):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, local: str) -> bool:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        if len(head) > MAX_HEAD:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        length = int(headers.get("content-length") or 0)
        if length:
            await reader.readexactly(min(length, 1 << 20))
        self.requests += 1
        self.addresses.add(local)
        match = USER_PATH.match(target)
        body = json.dumps({"user": match.group(1) if match else None, "address": local,
                           "method": method, "path": target}).encode()
        keep = headers.get("connection", "").lower() != "close"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nX-JupyterHub-Version: {self.hub_version}\r\n"
              f"{STUB_HEADER}: 1\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
            + body)
        await writer.drain()
        return keep
