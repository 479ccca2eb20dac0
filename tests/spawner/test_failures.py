"""Kubernetes' reasons for not running a server, as one-line messages."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner

from dsbuild.spawner.errors import SpawnFailed
from dsbuild.spawner.failures import (
    image_pull_failure,
    refusal_message,
    unplaced_message,
    unschedulable_reason,
    waiting_for_volumes,
)
from dsbuild.spawner.spawner import DsbuildSpawner

SCHEDULER = "0/8 nodes are available: 2 Insufficient nvidia.com/gpu, 6 node(s) didn't match Pod's node affinity/selector."


def pod(*conditions):
    return {"metadata": {"name": "jupyter-x"}, "status": {"phase": "Pending", "conditions": list(conditions)}}


def test_unschedulable_reason_is_the_schedulers_message():
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": SCHEDULER}
    assert unschedulable_reason(pod(unschedulable)) == SCHEDULER
    assert unschedulable_reason(pod({"type": "PodScheduled", "status": "True"})) is None
    assert unschedulable_reason(pod()) is None
    assert unschedulable_reason(None) is None
    assert unschedulable_reason({"metadata": {}, "status": None}) is None


def test_quota_and_admission_refusals_quote_the_api_message():
    quota = ('pods "jupyter-q" is forbidden: exceeded quota: compute, requested: limits.cpu=8, '
             'used: limits.cpu=0, limited: limits.cpu=4')
    body = json.dumps({"kind": "Status", "status": "Failure", "message": quota, "reason": "Forbidden", "code": 403})
    assert refusal_message(403, body) == f"The namespace's resource quota does not allow this server: {quota}"
    assert refusal_message(422, json.dumps({"message": "bad"})) == "Kubernetes refused to create this server: bad"
    assert refusal_message(403, "not json", "Forbidden") == "Kubernetes refused to create this server: Forbidden"
    assert refusal_message(500, body) is None
    assert refusal_message(409, body) is None


def test_unplaced_message_names_the_request_and_the_reason():
    assert unplaced_message("env (img): 1 CPU", SCHEDULER) == (
        f"No node can run this server (env (img): 1 CPU). The scheduler says: {SCHEDULER}")


def test_waiting_for_the_home_volume_is_not_a_lack_of_room():
    assert waiting_for_volumes("0/8 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                               "preemption: 0/8 nodes are available: 8 Preemption is not helpful for scheduling.")
    assert not waiting_for_volumes(SCHEDULER)


def test_start_fails_with_the_schedulers_reason_and_deletes_the_pod(monkeypatch, make_spawner):
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": SCHEDULER}
    stopped = []

    async def pending_forever(self):
        await self.load_user_options()
        await asyncio.sleep(3600)

    async def stop(self, now=False):
        stopped.append(now)

    monkeypatch.setattr(KubeSpawner, "_start", pending_forever)
    monkeypatch.setattr(KubeSpawner, "stop", stop)

    async def scenario():
        spawner = make_spawner(unschedulable_timeout=0.1)
        reflector = SimpleNamespace(pods={f"{spawner.namespace}/{spawner.pod_name}": pod(unschedulable)})
        monkeypatch.setattr(DsbuildSpawner, "pod_reflector", property(lambda self: reflector))
        spawner.user_options = {"gpu_type": "nvidia-t4", "gpus": 1}
        with pytest.raises(SpawnFailed) as failure:
            await spawner.start()
        return failure.value

    failure = asyncio.run(scenario())
    assert failure.jupyterhub_message.endswith(f"The scheduler says: {SCHEDULER}")
    assert "1 x NVIDIA T4 16GB" in failure.jupyterhub_message
    assert stopped == [True]


def test_start_refused_by_a_quota_is_one_clear_line(monkeypatch, make_spawner):
    quota = 'pods "jupyter-rita" is forbidden: exceeded quota: compute, requested: limits.cpu=8'

    async def refused(self):
        error = ApiException(status=403, reason="Forbidden")
        error.body = json.dumps({"message": quota})
        raise error

    monkeypatch.setattr(KubeSpawner, "_start", refused)

    async def scenario():
        spawner = make_spawner()
        with pytest.raises(SpawnFailed) as failure:
            await spawner.start()
        return failure.value

    assert asyncio.run(scenario()).jupyterhub_message == (
        f"The namespace's resource quota does not allow this server: {quota}")


def waiting(name: str, reason: str, message: str = "", init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    return {"metadata": {"name": "jupyter-x"},
            "status": {"phase": "Pending", key: [{"name": name, "image": "localhost:5000/x:1", "state": state}]}}


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"])
def test_a_pull_failure_of_any_container_is_reported_with_the_kubelets_message(reason):
    message = 'failed to resolve reference "localhost:5000/x:1": not found'
    assert image_pull_failure(waiting("home-init", reason, message, init=True)) == (
        f"The node could not pull the image localhost:5000/x:1: {message}")
    assert image_pull_failure(waiting("notebook", reason)).endswith(f": {reason}")


def test_waiting_for_other_reasons_is_no_pull_failure():
    assert image_pull_failure(waiting("notebook", "ContainerCreating")) is None
    assert image_pull_failure(waiting("home-init", "PodInitializing", init=True)) is None
    assert image_pull_failure(None) is None
    assert image_pull_failure({"status": None}) is None


def test_a_start_the_hub_gives_up_on_deletes_the_pod_once_its_slow_create_is_answered(monkeypatch, make_spawner):
    """JupyterHub cancels a start at `start_timeout`. A pod create still on its way then
    (the API server is slow) is waited for, and only then is the pod deleted: deleting it
    first would find nothing, and the create would then leave a pod with no server."""
    events = []

    class SlowApi:
        async def create_namespaced_pod(self, namespace, pod):
            server = asyncio.ensure_future(asyncio.sleep(0.5))  # the API server's work: done whatever the client does
            server.add_done_callback(lambda _: events.append("created"))
            await asyncio.shield(server)

    async def kube_start(self):
        await self.load_user_options()
        await self._make_create_pod_request(SimpleNamespace(metadata=SimpleNamespace(name="jupyter-rita")), 0.1)
        await asyncio.sleep(3600)  # KubeSpawner trying again, until the hub gives up

    async def stop(self, now=False):
        events.append("deleted")

    monkeypatch.setattr(KubeSpawner, "_start", kube_start)
    monkeypatch.setattr(KubeSpawner, "stop", stop)
    monkeypatch.setattr(DsbuildSpawner, "_reflected_pod", lambda self: None)

    async def scenario():
        spawner = make_spawner(unschedulable_timeout=0)
        spawner.api = SlowApi()
        spawner.user_options = {}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(spawner.start(), 0.3)  # what JupyterHub does at start_timeout
        await asyncio.sleep(0.5)  # the API server has made the pod by now

    asyncio.run(scenario())
    assert events == ["created", "deleted"]
