"""Servers on Kubernetes: the pod's security context (pure manifests) and the
NetworkPolicy that keeps them from other servers and the metadata service."""

from __future__ import annotations

import ipaddress

import kubernetes_validate
import pytest
from dsbuild.spawner.network_policy import network_policy_manifest

from tests.spawner.conftest import K8S_VERSION, fake_kubeconfig  # noqa: F401 (fixture)


def test_the_policy_is_a_valid_networkpolicy():
    for policy in (network_policy_manifest(), network_policy_manifest(allow_internet=False)):
        kubernetes_validate.validate(policy, K8S_VERSION, strict=True)


def _blocks(policy) -> list[dict]:
    return [peer["ipBlock"] for rule in policy["spec"]["egress"] for peer in rule.get("to", []) if "ipBlock" in peer]


def _allowed(policy, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for block in _blocks(policy):
        net = ipaddress.ip_network(block["cidr"])
        if ip.version == net.version and ip in net and not any(ip in ipaddress.ip_network(e) for e in block["except"]):
            return True
    return False


@pytest.mark.parametrize("address", ["169.254.169.254", "10.244.1.7", "172.20.0.3", "192.168.49.2", "100.64.3.3",
                                     "127.0.0.1", "fd12::7", "fe80::1"])
def test_servers_reach_no_private_or_link_local_address(address):
    assert not _allowed(network_policy_manifest(), address)


def test_public_addresses_only_when_allowed_and_the_hub_by_its_pods():
    policy = network_policy_manifest()
    assert _allowed(policy, "140.82.121.3") and _allowed(policy, "2606:4700::1")
    assert not _blocks(network_policy_manifest(allow_internet=False))
    hub_rules = [r for r in policy["spec"]["egress"] if any("podSelector" in p for p in r.get("to", []))]
    assert hub_rules == [{"to": [{"podSelector": {"matchLabels": {"component": "hub"}}}],
                          "ports": [{"protocol": "TCP", "port": 8081}]}]


def test_dns_goes_only_to_kube_system_not_to_any_address_on_port_53():
    (dns,) = [r for r in network_policy_manifest()["spec"]["egress"] if {"protocol": "UDP", "port": 53} in r.get("ports", [])]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}]


def _config_of(text: str):
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.tornado_settings = {}
    exec(compile(text, "jupyterhub_config.py", "exec"), {"c": c})  # a snippet pasted into jupyterhub_config.py
    return c


def test_hub_config_puts_the_policy_on_the_spawner():
    """`dsbuild hub config` (jupyterhub format): the spawner gets the policy to put in its namespace."""
    import yaml

    from dsbuild.spawner.catalog import parse_catalog
    from dsbuild.spawner.hub_config import render_hub_config
    from tests.spawner.conftest import EXAMPLE_CATALOG

    catalog = parse_catalog(yaml.safe_load(EXAMPLE_CATALOG.read_text()))
    policy = _config_of(render_hub_config(catalog, "jupyterhub")).DsbuildSpawner.network_policy
    assert policy == network_policy_manifest()
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)


def test_z2jh_values_ask_the_chart_for_the_same_policy():
    """Zero-to-JupyterHub values: the chart's singleuser.networkPolicy, denying private
    ranges and the metadata address (its DNS port too); the spawner makes none of its own."""
    import yaml

    from dsbuild.spawner.catalog import parse_catalog
    from dsbuild.spawner.hub_config import render_hub_config
    from tests.spawner.conftest import EXAMPLE_CATALOG

    catalog = parse_catalog(yaml.safe_load(EXAMPLE_CATALOG.read_text()))
    values = yaml.safe_load(render_hub_config(catalog, "z2jh"))
    policy = values["singleuser"]["networkPolicy"]
    assert policy["enabled"] is True and policy["egress"] == [] and policy["allowedIngressPorts"] == []
    assert policy["egressAllowRules"] == {"cloudMetadataServer": False, "dnsPortsCloudMetadataServer": False,
                                          "dnsPortsKubeSystemNamespace": True, "dnsPortsPrivateIPs": True,
                                          "nonPrivateIPs": True, "privateIPs": False}
    assert values["singleuser"]["cloudMetadata"] == {"blockWithIptables": True}
    c = _config_of(values["hub"]["extraConfig"]["dsbuild"])
    assert "network_policy" not in c.DsbuildSpawner and c.JupyterHub.spawner_class == "dsbuild"


def test_only_the_proxy_and_the_hub_reach_a_server():
    spec = network_policy_manifest()["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"] == {"matchLabels": {"component": "singleuser-server"}}
    (rule,) = spec["ingress"]
    assert [p["podSelector"]["matchLabels"]["component"] for p in rule["from"]] == ["proxy", "hub"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8888}]


def test_the_pod_runs_as_uid_1000_without_privileges():
    from dsbuild.spawner.catalog import parse_catalog
    from dsbuild.spawner.manifests import pod_manifest
    from tests.spawner.conftest import minimal_pod
    from dsbuild.spawner.options import parse_user_options
    from dsbuild.spawner.resolve import HubUser, resolve

    from tests.spawner.conftest import EXAMPLE_CATALOG

    import yaml

    catalog = parse_catalog(yaml.safe_load(EXAMPLE_CATALOG.read_text()))
    request = resolve(parse_user_options({}), catalog, HubUser("anna", frozenset()))
    pod = pod_manifest(request, pvc_name="claim-anna", base=minimal_pod("jupyter-anna"))
    context = pod["spec"]["containers"][0]["securityContext"]
    assert context == {"runAsUser": 1000, "runAsGroup": 100, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                       "privileged": False, "capabilities": {"drop": ["ALL"]},
                       "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.usefixtures("fake_kubeconfig")
@pytest.mark.parametrize("name, deleted", [("binder-0123456789ab", True), ("alice", False)])
def test_a_temporary_users_pvc_is_deleted_with_the_user(name, deleted):
    import asyncio

    from dsbuild.launch.kube_spawner import KubeLaunchSpawner

    from tests.spawner.conftest import EXAMPLE_CATALOG, hub_objects

    calls = []

    async def scenario():
        user, hub, orm_spawner = hub_objects(name)
        spawner = KubeLaunchSpawner(user=user, hub=hub, orm_spawner=orm_spawner, catalog_file=str(EXAMPLE_CATALOG))

        async def delete(pvc_name, timeout):
            calls.append(pvc_name)
            return True

        spawner._make_delete_pvc_request = delete
        await spawner.delete_forever()
        return spawner.pvc_name

    pvc = asyncio.run(scenario())
    assert calls == ([pvc] if deleted else [])
