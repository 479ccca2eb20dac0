"""The servers' NetworkPolicy against the real API server: the spawner configured by
`dsbuild hub config` creates it in its namespace before its first spawn (with the hub's
own RBAC), replaces a changed one, and the API server admits it as rendered.

The test cluster has no network plugin that enforces NetworkPolicy (kwok's simulated
nodes run no containers; the real node's CNI bridge does not implement policies), so
the policy's effect on traffic is not tried here: docs/security.md says so."""

from __future__ import annotations

import pytest
import yaml

from dsbuild.spawner.catalog import parse_catalog
from dsbuild.spawner.hub_config import render_hub_config
from dsbuild.spawner.spawner import DsbuildSpawner

from .hub import EXAMPLE_CATALOG, make_spawner, spawn

pytestmark = pytest.mark.cluster


def _rendered_policy() -> dict:
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.tornado_settings = {}
    text = render_hub_config(parse_catalog(yaml.safe_load(EXAMPLE_CATALOG.read_text())), "jupyterhub")
    exec(compile(text, "jupyterhub_config.py", "exec"), {"c": c})
    return c.DsbuildSpawner.network_policy


def test_the_spawner_puts_the_rendered_policy_in_its_namespace(cluster, namespace, run):
    policy = _rendered_policy()
    DsbuildSpawner._policies_in_force.discard(namespace)
    cluster.apply({**policy, "spec": {**policy["spec"], "ingress": []}, "metadata": {**policy["metadata"],
                   "namespace": namespace}})  # an older, different one is there already

    async def scenario():
        spawner = make_spawner("nora", namespace, network_policy=policy)
        await spawn(spawner, {})
        await spawner.stop()

    run(scenario())
    found = cluster.get("networkpolicy", policy["metadata"]["name"], namespace=namespace)
    assert found is not None, "no NetworkPolicy in the namespace"
    assert found["spec"]["podSelector"] == policy["spec"]["podSelector"]
    assert found["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert found["spec"]["ingress"] == policy["spec"]["ingress"], "the older policy was not replaced"
    egress = found["spec"]["egress"]
    assert egress == policy["spec"]["egress"]
    blocks = [peer["ipBlock"] for rule in egress for peer in rule.get("to", []) if "ipBlock" in peer]
    assert all("169.254.0.0/16" in b["except"] for b in blocks if b["cidr"] == "0.0.0.0/0")
    assert namespace in DsbuildSpawner._policies_in_force
    DsbuildSpawner._policies_in_force.discard(namespace)
