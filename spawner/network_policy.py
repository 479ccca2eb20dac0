"""The NetworkPolicy that fences in the servers' pods. Pure: returns a plain dict.

    ingress  only from the proxy's and the hub's pods, only to the notebook port
    egress   DNS to the kube-system namespace's pods only (not to any address on
             port 53: that would open 169.254.169.254:53 and other pods); the hub's
             pods on its API port only (single-user servers must reach it: token
             checks, activity); and, when `allow_internet`, public addresses only:
             every private (RFC 1918), carrier-grade NAT, loopback and link-local
             range is excepted, so other servers' pods, the cluster's services and
             169.254.169.254 (a cloud's metadata service) are not reachable

How it reaches a cluster: `dsbuild hub config` puts it in the generated
jupyterhub_config.py as `DsbuildSpawner.network_policy`, which the spawner creates or
replaces in its namespace before its first spawn (`ensure_network_policy`; the hub's
role needs get/create/update on networkpolicies); the Zero-to-JupyterHub values ask
the chart for the same with `singleuser.networkPolicy` instead.

The selectors are Zero-to-JupyterHub's labels by default (`component: singleuser-server`,
`hub`, `proxy`). A cluster whose network plugin does not enforce NetworkPolicy ignores
it: check with the plugin's documentation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .manifests import NOTEBOOK_PORT

NOT_PUBLIC_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                 "0.0.0.0/8")
NOT_PUBLIC_V6 = ("fc00::/7", "fe80::/10", "::1/128")
SERVER_LABELS = {"component": "singleuser-server"}
HUB_LABELS = {"component": "hub"}
DNS_NAMESPACE = {"kubernetes.io/metadata.name": "kube-system"}
PROXY_LABELS = {"component": "proxy"}


def _pods(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": dict(labels)}}


def network_policy_manifest(
    name: str = "dsbuild-servers",
    *,
    server_labels: Mapping[str, str] = SERVER_LABELS,
    hub_labels: Mapping[str, str] = HUB_LABELS,
    proxy_labels: Mapping[str, str] = PROXY_LABELS,
    hub_port: int = 8081,
    notebook_port: int = NOTEBOOK_PORT,
    allow_internet: bool = True,
) -> dict[str, Any]:
    egress: list[dict[str, Any]] = [
        {"to": [{"namespaceSelector": {"matchLabels": dict(DNS_NAMESPACE)}}],
         "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"to": [_pods(hub_labels)], "ports": [{"protocol": "TCP", "port": hub_port}]},
    ]
    if allow_internet:
        egress.append({"to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NOT_PUBLIC_V4)}},
            {"ipBlock": {"cidr": "::/0", "except": list(NOT_PUBLIC_V6)}},
        ]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "dsbuild"}},
        "spec": {
            "podSelector": {"matchLabels": dict(server_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [_pods(proxy_labels), _pods(hub_labels)],
                         "ports": [{"protocol": "TCP", "port": notebook_port}]}],
            "egress": egress,
        },
    }


async def ensure_network_policy(api: Any, namespace: str, manifest: Mapping[str, Any]) -> str:
    """Create `manifest` in `namespace`, or replace the one of that name (the edge; `api`
    is a kubernetes_asyncio NetworkingV1Api). Returns "created" or "replaced"."""
    from kubernetes_asyncio.client.rest import ApiException

    name = manifest["metadata"]["name"]
    try:
        await api.create_namespaced_network_policy(namespace, dict(manifest))
        return "created"
    except ApiException as err:
        if err.status != 409:
            raise
    current = await api.read_namespaced_network_policy(name, namespace)
    body = {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": current.metadata.resource_version}}
    await api.replace_namespaced_network_policy(name, namespace, body)
    return "replaced"
