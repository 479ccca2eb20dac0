"""DsbuildSpawner's own start, poll and stop against a real Kubernetes cluster
(tests/cluster/start.sh): the real API server validates and admits what the
spawner sends (RBAC, ResourceQuota, LimitRanger, PodSecurity), the real
scheduler places pods on simulated CPU and GPU nodes, the real PV controller
binds home volumes. kwok plays the kubelets, so no container runs."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from dsbuild.spawner.errors import SpawnFailed

from . import objects
from .hub import example_catalog, make_spawner, spawn

pytestmark = pytest.mark.cluster


def node_of(cluster, pod: dict) -> dict:
    return cluster.get("node", pod["spec"]["nodeName"])


def pod_of(cluster, spawner) -> dict | None:
    return cluster.get("pod", spawner.pod_name, namespace=spawner.namespace)


def test_cpu_choice_runs_with_its_requests_and_limits_on_a_cpu_node(cluster, namespace, run):
    async def scenario():
        spawner = make_spawner("carla", namespace)
        url = await spawn(spawner, {"cpu": "2", "memory": "4Gi"})
        running = await spawner.poll()
        pod = pod_of(cluster, spawner)
        await spawner.stop()
        return spawner, url, running, pod, await spawner.poll()

    spawner, url, running, pod, stopped = run(scenario())
    assert url.startswith("http://10.244.") and url.endswith(":8888")  # kwok's pod IP; never connected to
    assert running is None and stopped == 1
    assert pod["status"]["phase"] == "Running"
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    node = node_of(cluster, pod)
    assert node["metadata"]["labels"][objects.POOL_LABEL] == "cpu"
    assert objects.GPU_RESOURCE not in node["status"]["allocatable"]
    assert pod_of(cluster, spawner) is None  # stop waited for the pod to be gone


@pytest.mark.parametrize("gpu_type, gpus, product", [
    ("nvidia-a100", 2, "NVIDIA-A100-SXM4-40GB"),
    ("nvidia-t4", 1, "Tesla-T4"),
])
def test_each_gpu_choice_is_placed_on_a_node_of_that_type(cluster, namespace, run, gpu_type, gpus, product):
    async def scenario():
        spawners = [make_spawner(f"gina{i}", namespace) for i in range(3)]
        for spawner in spawners:
            await spawn(spawner, {"environment": "dsbuild-torch:2.3", "gpu_type": gpu_type, "gpus": gpus})
        pods = [pod_of(cluster, s) for s in spawners]
        for spawner in spawners:
            await spawner.stop()
        return pods

    for pod in run(scenario()):
        assert pod["spec"]["containers"][0]["resources"]["limits"][objects.GPU_RESOURCE] == str(gpus)
        node = node_of(cluster, pod)
        labels = node["metadata"]["labels"]
        assert labels["nvidia.com/gpu.product"] == product
        assert labels[objects.POOL_LABEL] != "cpu"
        assert int(node["status"]["allocatable"][objects.GPU_RESOURCE]) >= gpus


def test_a_request_no_node_can_hold_fails_with_the_schedulers_reason(cluster, namespace, run):
    # T4 nodes have 4 GPUs each: 8 fit nowhere. The catalog allows it; the cluster cannot.
    catalog = example_catalog(gpus=8)

    async def scenario():
        spawner = make_spawner("ursula", namespace, catalog=catalog)
        t0 = time.monotonic()
        with pytest.raises(SpawnFailed) as failure:
            await spawn(spawner, {"gpu_type": "nvidia-t4", "gpus": 8})
        return spawner, failure.value, time.monotonic() - t0

    spawner, failure, took = run(scenario())
    message = failure.jupyterhub_message
    assert message.startswith("No node can run this server (dsbuild-sketches:2024.06")
    assert "8 x NVIDIA T4 16GB" in message
    assert re.search(r"The scheduler says: 0/\d+ nodes are available", message)  # kwok nodes and the real one
    assert "Insufficient nvidia.com/gpu" in message
    assert took < 30  # unschedulable_timeout=3, not start_timeout
    assert pod_of(cluster, spawner) is None
    # The home claim this failed first start made is gone too: nothing ever ran with it.
    assert cluster.get("pvc", spawner.pvc_name, namespace=namespace) is None


def test_a_failed_start_keeps_a_home_claim_that_was_there_before(cluster, namespace, run):
    catalog = example_catalog(gpus=8)

    async def scenario():
        spawner = make_spawner("wanda", namespace, catalog=catalog)
        await spawn(spawner, {})
        before = cluster.get("pvc", spawner.pvc_name, namespace=namespace)
        await spawner.stop()
        with pytest.raises(SpawnFailed):  # 8 T4 GPUs fit on no node
            await spawn(spawner, {"gpu_type": "nvidia-t4", "gpus": 8})
        return spawner, before

    spawner, before = run(scenario())
    assert pod_of(cluster, spawner) is None
    after = cluster.get("pvc", spawner.pvc_name, namespace=namespace)
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]


def test_home_volume_is_bound_and_the_same_volume_comes_back_after_stop_and_start(cluster, namespace, run):
    async def first():
        spawner = make_spawner("vera", namespace)
        await spawn(spawner, {"storage": "50Gi"})
        pvc = cluster.get("pvc", spawner.pvc_name, namespace=namespace)
        pod = pod_of(cluster, spawner)
        await spawner.stop()
        return spawner.get_state(), pvc, pod

    state, pvc, pod = run(first())
    assert pvc["status"]["phase"] == "Bound"
    volume = pvc["spec"]["volumeName"]
    pv = cluster.get("pv", volume)
    assert pv["spec"]["claimRef"]["name"] == pvc["metadata"]["name"]
    assert pv["spec"]["capacity"]["storage"] == "50Gi"
    assert {"name": "home", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["spec"]["volumes"]
    # Stopped: the claim stays, still bound to the same volume.
    kept = cluster.get("pvc", pvc["metadata"]["name"], namespace=namespace)
    assert kept["metadata"]["uid"] == pvc["metadata"]["uid"] and kept["spec"]["volumeName"] == volume

    async def again():  # a new spawner from the saved state, as after a hub restart
        spawner = make_spawner("vera", namespace, state=state)
        await spawn(spawner, {"storage": "50Gi"})
        pod = pod_of(cluster, spawner)
        await spawner.stop()
        return pod

    pod = run(again())
    assert {"name": "home", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["spec"]["volumes"]
    back = cluster.get("pvc", pvc["metadata"]["name"], namespace=namespace)
    assert back["metadata"]["uid"] == pvc["metadata"]["uid"] and back["spec"]["volumeName"] == volume


@pytest.mark.parametrize("policy, expected", [
    ({"kind": "ResourceQuota", "spec": {"hard": {"limits.cpu": "4", "requests.nvidia.com/gpu": "0"}}},
     ["The namespace's resource quota does not allow this server", "exceeded quota: policy",
      "requested: limits.cpu=8", "limited: limits.cpu=4"]),
    ({"kind": "LimitRange", "spec": {"limits": [{"type": "Container", "max": {"cpu": "4"}}]}},
     ["Kubernetes refused to create this server", "maximum cpu usage per Container is 4, but limit is 8"]),
])
def test_namespace_policies_that_refuse_the_pod_give_a_clear_message(cluster, namespace, run, policy, expected):
    cluster.apply({"apiVersion": "v1", "metadata": {"name": "policy", "namespace": namespace}, **policy})
    if policy["kind"] == "ResourceQuota":  # admission refuses every pod until the quota is counted
        cluster.wait_for(lambda: (cluster.get("resourcequota", "policy", namespace=namespace)
                                  .get("status", {}).get("used")), "the quota's first count")

    async def scenario():
        spawner = make_spawner("quentin", namespace)
        with pytest.raises(SpawnFailed) as failure:
            await spawn(spawner, {"cpu": "8", "memory": "8Gi"})
        return spawner, failure.value

    spawner, failure = run(scenario())
    for part in expected:
        assert part in failure.jupyterhub_message
    assert "HTTP response" not in failure.jupyterhub_message  # no raw API dump
    assert pod_of(cluster, spawner) is None


def test_a_pod_deleted_from_outside_is_seen_by_poll(cluster, namespace, run):
    async def start():
        spawner = make_spawner("dora", namespace)
        await spawn(spawner, {})
        return spawner, await spawner.poll()

    spawner, before = run(start())
    assert before is None
    cluster("delete", "pod", spawner.pod_name, "-n", namespace, "--wait=true")

    async def after():
        deadline = time.monotonic() + 15
        while (status := await spawner.poll()) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return status

    assert run(after()) == 1
