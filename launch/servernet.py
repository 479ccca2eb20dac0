"""The Docker network the local hub's servers run on (the docker CLI edge).

`dsbuild hub up` creates one network per hub, `<prefix>-servers`:

- `--internal`: nothing is forwarded between it and any other network, so a server
  reaches neither the internet, nor 169.254.169.254 (a cloud's metadata service), nor
  the addresses of other Docker networks (the default bridge's hub, other hubs);
- inter-container traffic off (`enable_icc=false`): a server cannot open a connection
  to another server;
- the host holds the network's gateway address; the hub's API listens there (the
  single-user servers must reach it) and the proxy, on the host, reaches each server
  at its address on the network.

What the network cannot stop: a server can open connections to the host's own
addresses, so a service on the host that listens on every address (0.0.0.0) is
reachable from servers. Bind host services to 127.0.0.1 or firewall the bridge
(docs/security.md gives the rule)."""

from __future__ import annotations

import ipaddress
import json
import subprocess

from dsbuild.builder.engine import find_docker_cli
from dsbuild.builder.errors import DsbuildError

LABEL = "io.dsbuild.hub"


class NetworkError(DsbuildError):
    exit_code = 7


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([find_docker_cli(), *args], capture_output=True, text=True, timeout=timeout)


def gateway(name: str) -> str | None:
    """The host's address on network `name`, or None if there is no such network."""
    done = _docker("network", "inspect", name, "--format", "{{json .IPAM.Config}}")
    if done.returncode != 0:
        return None
    try:
        configs = json.loads(done.stdout) or []
    except ValueError:
        configs = []
    for config in configs:
        try:
            if config.get("Gateway"):
                return str(ipaddress.IPv4Address(config["Gateway"]))
            if config.get("Subnet"):
                return str(next(ipaddress.IPv4Network(config["Subnet"]).hosts()))
        except ValueError:
            continue
    return None


def ensure_server_network(name: str, hub_label: str) -> str:
    """Create the isolated network `name` unless it exists; returns its gateway address."""
    found = gateway(name)
    if found:
        return found
    done = _docker("network", "create", "--driver", "bridge", "--internal",
                   "--opt", "com.docker.network.bridge.enable_icc=false",
                   "--label", f"{LABEL}={hub_label}", name)
    if done.returncode != 0:
        raise NetworkError(f"cannot create the servers' network {name}: {done.stderr.strip()}")
    found = gateway(name)
    if not found:
        raise NetworkError(f"the servers' network {name} has no gateway address")
    return found


def remove_server_network(name: str, hub_label: str) -> bool:
    """Remove `name` if this hub created it (it carries the hub's label)."""
    done = _docker("network", "inspect", name, "--format", "{{json .Labels}}")
    if done.returncode != 0:
        return False
    try:
        labels = json.loads(done.stdout) or {}
    except ValueError:
        return False
    if labels.get(LABEL) != hub_label:
        return False
    return _docker("network", "rm", name).returncode == 0


def remove_volumes(hub_label: str) -> list[str]:
    """Remove the home volumes this hub's servers left (a hub stopped without deleting its users)."""
    done = _docker("volume", "ls", "-q", "--filter", f"label={LABEL}={hub_label}")
    names = done.stdout.split()
    if names:
        _docker("volume", "rm", "-f", *names, timeout=120)
    return names
