"""The host's firewall for the local hub's servers' network (iptables, owned by dsbuild).

The servers' Docker network is internal (nothing forwarded: no internet, no
169.254.169.254, no other Docker network) with no traffic between servers
(servernet.py). What it cannot stop is a server opening connections to the HOST's own
addresses: anything on the host that listens on every address (sshd, a database,
dockerd's TCP socket, the hub's other ports) would be reachable through the network's
gateway. So `dsbuild hub up` puts one chain of its own on the host's INPUT for the
network's bridge:

    conntrack ESTABLISHED,RELATED  -> ACCEPT   (replies: the proxy and the hub connect to servers)
    tcp to GATEWAY:HUB_PORT        -> ACCEPT   (the hub's API: jupyterhub-singleuser needs it)
    anything else                  -> DROP

so a server reaches exactly one port on the host, the hub's API, where its token's
scopes bound what it can do (its own user's activity and server only). `hub down`
removes the chain and its hook. `ServerFirewall.commands()` is pure; `apply` and
`remove` run iptables (root)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass

from .errors import HubError

IPTABLES = "iptables"


def chain_name(network: str) -> str:
    """The chain of one servers' network (iptables allows 28 characters)."""
    return "DSBUILD-" + hashlib.sha256(network.encode()).hexdigest()[:12].upper()


@dataclass(frozen=True)
class ServerFirewall:
    chain: str
    bridge: str  # the network's bridge interface on the host
    gateway: str  # the host's address on it, where the hub's API listens
    hub_port: int

    def hook(self) -> list[str]:
        return ["INPUT", "-i", self.bridge, "-j", self.chain]

    def commands(self) -> list[list[str]]:
        """iptables argument lists that (re)make the chain and hook it in (pure)."""
        return [
            ["-F", self.chain],
            ["-A", self.chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            ["-A", self.chain, "-p", "tcp", "-d", self.gateway, "--dport", str(self.hub_port), "-j", "ACCEPT"],
            ["-A", self.chain, "-j", "DROP"],
        ]


def _iptables(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([IPTABLES, "-w", "10", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise HubError("iptables is not installed (apt-get install iptables)") from None


def bridge_of(gateway: str) -> str:
    """The host interface that holds `gateway` (the network's bridge)."""
    done = subprocess.run(["ip", "-j", "-4", "addr", "show", "to", f"{gateway}/32"], capture_output=True, text=True)
    try:
        names = [link["ifname"] for link in json.loads(done.stdout or "[]")]
    except (ValueError, KeyError, TypeError):
        names = []
    if len(names) != 1:
        raise HubError(f"cannot find the bridge interface holding {gateway}")
    return names[0]


def apply(firewall: ServerFirewall) -> None:
    """Make the chain (again: idempotent) and hook it into INPUT once."""
    _iptables("-N", firewall.chain)  # fails harmlessly when it exists
    for args in firewall.commands():
        done = _iptables(*args)
        if done.returncode != 0:
            raise HubError(f"iptables {' '.join(args[:2])} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    if _iptables("-C", *firewall.hook()).returncode != 0:
        done = _iptables("-I", *firewall.hook())
        if done.returncode != 0:
            raise HubError(f"iptables could not hook {firewall.chain} into INPUT: {done.stderr.strip()}")


def remove(chain: str) -> bool:
    """Unhook and delete `chain` (every INPUT rule that jumps to it); False if it was not there."""
    listing = _iptables("-S", "INPUT").stdout.splitlines()
    for rule in listing:
        parts = rule.split()
        if parts[:2] == ["-A", "INPUT"] and parts[-2:] == ["-j", chain]:
            _iptables("-D", *parts[1:])
    _iptables("-F", chain)
    return _iptables("-X", chain).returncode == 0
