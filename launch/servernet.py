"""The Docker network the local hub's servers run on, through the builder's engine.

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
addresses, so a service on the host that listens on every address (0.0.0.0) would be
reachable from servers. `hub up` fences that with an iptables chain of its own
(firewall.py): only the hub's API port on the gateway is open to servers."""

from __future__ import annotations

import ipaddress

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.names import HUB_LABEL

from .errors import HubError


def gateway(engine: DockerEngine, name: str) -> str | None:
    """The host's address on network `name` (the IPAM gateway, else the first address of
    the subnet, which dockerd gives the bridge), or None if there is no such network."""
    for config in engine.network_ipam(name):
        try:
            if config.get("Gateway"):
                return str(ipaddress.IPv4Address(config["Gateway"]))
            if config.get("Subnet"):
                return str(next(ipaddress.IPv4Network(config["Subnet"]).hosts()))
        except ValueError:
            continue
    return None


def ensure_server_network(engine: DockerEngine, name: str, hub_label: str) -> str:
    """Create the isolated network `name` unless it exists; returns its gateway address."""
    found = gateway(engine, name)
    if found:
        return found
    reason = engine.create_network(name, {HUB_LABEL: hub_label}, internal=True,
                                   options={"com.docker.network.bridge.enable_icc": "false"})
    if reason:
        raise HubError(f"cannot create the servers' network {name}: {reason}")
    found = gateway(engine, name)
    if not found:
        raise HubError(f"the servers' network {name} has no gateway address")
    return found


def remove_server_network(engine: DockerEngine, name: str, hub_label: str) -> bool:
    """Remove `name` if this hub created it (it carries the hub's label)."""
    labels = engine.network_labels(name)
    return bool(labels) and labels.get(HUB_LABEL) == hub_label and engine.remove_network(name)


def remove_volumes(engine: DockerEngine, hub_label: str) -> list[str]:
    """Remove the home volumes this hub's servers left (a hub stopped without deleting its users)."""
    names = engine.volumes_labelled(HUB_LABEL, hub_label)
    engine.remove_volumes(names)
    return names
