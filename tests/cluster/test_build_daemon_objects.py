"""The build daemons' objects on the test cluster's simulated nodes (no real node needed:
kwok plays the daemons' and build pods' kubelets). As the launch service's account with
only RBAC_RULES: the service puts the DaemonSet, its ConfigMap and its TLS Secrets in
place once, finds nothing to change the second time, rolls the daemons when a setting
changes; and a build pod's daemon is the one on the node the scheduler picked."""

from __future__ import annotations

import uuid

import pytest

from dsbuild.builder.registry import Registry
from dsbuild.launch.build_daemon import (
    CLIENT_SECRET, DAEMON_LABELS, DAEMON_NAME, DAEMON_PORT, SERVER_SECRET, DaemonSettings,
)
from dsbuild.launch.kube_api import KubeApi
from dsbuild.launch.kube_builds import BuildPodSettings, KubernetesBuildEngine, build_pod, pod_name

from . import objects
from .buildaccount import write_service_kubeconfig
from .kube import Kubectl

pytestmark = pytest.mark.cluster
POOL = {objects.POOL_LABEL: objects.CPU.pool}  # the simulated CPU nodes


@pytest.fixture
def build_namespace(cluster: Kubectl):
    name = f"dsbuild-bd-{uuid.uuid4().hex[:6]}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)


def test_the_service_puts_its_daemons_in_place_with_only_its_role(cluster, build_namespace, tmp_path):
    api = KubeApi(str(write_service_kubeconfig(cluster, build_namespace, tmp_path / "kubeconfig")))
    daemons = DaemonSettings(namespace=build_namespace, image="localhost:1/dsbuild-buildkit:x", registry="localhost:1",
                             node_selector=POOL)
    pods = BuildPodSettings(namespace=build_namespace, image=daemons.image, cpu="1", memory="1Gi",
                            node_selector=POOL, ready_timeout=120)
    engine = KubernetesBuildEngine(pods, daemons, Registry("localhost:1"), api, cli="/bin/false", state=tmp_path / "tls")
    assert engine.ensure_daemons().endswith("created, created")
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    server = cluster.get("secret", SERVER_SECRET, namespace=build_namespace)
    client = cluster.get("secret", CLIENT_SECRET, namespace=build_namespace)
    assert server["data"]["ca.crt"] == client["data"]["ca.crt"] and "tls.key" in server["data"]
    assert engine.ensure_daemons().endswith("unchanged, unchanged")  # the same keys, nothing rolled
    assert cluster.get("secret", CLIENT_SECRET, namespace=build_namespace)["data"] == client["data"]

    cpu_nodes = {n["metadata"]["name"] for n in cluster.get("nodes", selector=f"{objects.POOL_LABEL}=cpu")}
    selector = ",".join(f"{k}={v}" for k, v in DAEMON_LABELS.items())

    def ready_daemons():
        found = cluster.get("pods", namespace=build_namespace, selector=selector) or []
        return {p["spec"]["nodeName"]: p for p in found if p["status"].get("podIP")}

    cluster.wait_for(lambda: set(ready_daemons()) == cpu_nodes, "a daemon on every CPU node", timeout=120)

    name = pod_name("localhost:1/dsbuild-x-1a2b3c", "c0ffee")
    uid = api.create_pod(build_namespace, build_pod(name, "localhost:1/dsbuild-x-1a2b3c", {}, pods))
    try:
        pod = api.wait_pod_ready(build_namespace, name, 120)
        assert pod.metadata.uid == uid and pod.spec.node_name in cpu_nodes
        daemon = ready_daemons()[pod.spec.node_name]
        assert engine.daemon_address(pod.spec.node_name) == f"tcp://{daemon['status']['podIP']}:{DAEMON_PORT}"
    finally:
        api.delete_pod(build_namespace, name)

    cluster("delete", "secret", SERVER_SECRET, "-n", build_namespace)  # half of the keys lost: both made again
    assert engine.ensure_daemons().endswith("updated, unchanged")  # the daemons roll to the new keys
    assert cluster.get("secret", CLIENT_SECRET, namespace=build_namespace)["data"] != client["data"]

    engine.daemons = DaemonSettings(**{**daemons.__dict__, "image": "localhost:1/dsbuild-buildkit:y"})
    assert engine.ensure_daemons().endswith("updated, unchanged")  # the config is the same
    daemon_set = cluster.get("daemonset", DAEMON_NAME, namespace=build_namespace)
    assert daemon_set["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost:1/dsbuild-buildkit:y"
