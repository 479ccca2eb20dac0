"""`dsbuild hub down` with the Kubernetes spawner leaves no server behind: the hub keeps
servers across its own restarts (cleanup_servers is off), so its pods would outlive it;
`hub down` stops them through the hub first, and removes the temporary users, whose
home volumes go with them. A regular user's home volume stays (user data).

On the real node (its lock: tests/cluster/README in COMMON), servers that really run."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import yaml

from dsbuild.launch.hubapi import HubClient
from dsbuild.launch.localhub import hub_down

from . import realnode
from .test_hub_node import NAMESPACE, pinned_namespace, start_hub  # noqa: F401 (fixture)

pytestmark = [pytest.mark.cluster]


def _claims(cluster) -> list[str]:
    return [c["metadata"]["name"] for c in cluster.get("pvc", namespace=NAMESPACE)]


def _pods(cluster) -> list[str]:
    return [p["metadata"]["name"] for p in cluster.get("pod", namespace=NAMESPACE)
            if p["metadata"]["name"].startswith("jupyter-")]


def test_hub_down_stops_every_server_and_removes_temporary_users(
        pinned_namespace, hub_kubeconfig, real_node, node_image, cluster, tmp_path):  # noqa: F811
    catalog = {k: v for k, v in realnode.catalog(node_image).items() if k != "data_volumes"}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    hub = start_hub(tmp_path, real_node.registry, hub_kubeconfig, tmp_path / "catalog.yaml")
    temporary, keeper = f"binder-{uuid.uuid4().hex[:12]}", f"keeper-{uuid.uuid4().hex[:6]}"
    client = HubClient(hub.hub_url + "hub/api/", (hub.state_dir / "service_token").read_text().strip(), timeout=60)

    async def start_both():
        for name in (temporary, keeper):
            await client.create_user(name)
            await client.start_server(name, "", {})
        for _ in range(600):
            servers = {u: s for u, _, s in await client.active_servers()}
            if all(servers.get(name, {}).get("ready") for name in (temporary, keeper)):
                return servers
            await asyncio.sleep(0.5)
        raise AssertionError(f"the servers did not become ready: {servers}")

    try:
        asyncio.run(start_both())
        assert len(_pods(cluster)) == 2
        before = _claims(cluster)
        assert any(temporary in c for c in before) and any(keeper in c for c in before), before
    finally:
        hub_down(hub.state_dir, say=print)
    cluster.wait_for(lambda: not _pods(cluster), "the servers' pods to be gone", timeout=120)
    after = _claims(cluster)
    assert not any(temporary in c for c in after), after  # the temporary user's home volume went with it
    assert any(keeper in c for c in after), after  # a regular user's home stays
