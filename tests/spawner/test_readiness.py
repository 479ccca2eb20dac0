"""How DsbuildSpawner sees a starting server up (spawner/readiness.py): a look
at the pod reflector, then at the pod's port, instead of KubeSpawner's and
JupyterHub's growing backoffs. Against real sockets on the loopback, with
KubeSpawner's own start stood in for by one that creates the pod and then waits
(as its backoff does)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

from kubespawner import KubeSpawner

from dsbuild.spawner.readiness import accepts_connections, until_listening
from dsbuild.spawner.spawner import DsbuildSpawner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_is_seen_listening_once_a_server_binds_it():
    async def scenario():
        port = free_port()
        url = f"http://127.0.0.1:{port}/user/rita/"
        before = await accepts_connections(url, timeout=1)
        waiting = asyncio.ensure_future(until_listening(url, interval=0.05, timeout=60))
        await asyncio.sleep(0.3)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        async with server:
            return before, await waiting

    assert asyncio.run(scenario()) == (False, True)


def test_waiting_for_a_port_gives_up_after_its_timeout():
    assert asyncio.run(until_listening(f"http://127.0.0.1:{free_port()}/", interval=0.05, timeout=0.3)) is False


def running_pod(uid: str = "uid-1", port: int = 8888) -> dict:
    return {"metadata": {"name": "jupyter-rita", "uid": uid},
            "spec": {"containers": [{"name": "notebook", "ports": [{"name": "notebook-port", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1", "containerStatuses": [{"ready": True}]}}


def test_start_returns_once_its_pod_runs_and_jupyterlab_listens(monkeypatch, make_spawner):
    """Not after KubeSpawner's own wait (which here never ends)."""
    created, reflected = [], {}

    class Api:
        async def create_namespaced_pod(self, namespace, pod):
            created.append(pod)

    async def kube_start(self):
        await self._make_create_pod_request(SimpleNamespace(metadata=SimpleNamespace(name="jupyter-rita")), 1)
        reflected["pod"] = running_pod(port=self.port)  # what the pod reflector sees next
        await asyncio.Future()  # KubeSpawner's backoff, stood in for by a wait that never ends

    monkeypatch.setattr(KubeSpawner, "_start", kube_start)
    monkeypatch.setattr(DsbuildSpawner, "_reflected_pod", lambda self: reflected.get("pod"))

    async def scenario():
        port = free_port()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        async with server:
            spawner = make_spawner(port=port, ready_check_interval=0.05)
            spawner.api = Api()
            url = await asyncio.wait_for(spawner._start(), 60)
            return spawner, url, port

    spawner, url, port = asyncio.run(scenario())
    assert url == f"http://127.0.0.1:{port}"
    assert [pod.metadata.name for pod in created] == ["jupyter-rita"] and spawner.pod_id == "uid-1"


def test_a_running_pod_of_an_earlier_start_is_not_taken_for_this_one(monkeypatch, make_spawner):
    """Until this start has created its pod, a running pod under the same name
    (being replaced) does not count; KubeSpawner's start decides."""

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: waited for http_timeout, then returned

    async def kube_start(self):
        await asyncio.sleep(0.5)  # the old pod is deleted, then the new one is created...
        return url

    monkeypatch.setattr(KubeSpawner, "_start", kube_start)
    monkeypatch.setattr(DsbuildSpawner, "_reflected_pod", lambda self: running_pod("old"))

    async def scenario():
        spawner = make_spawner(ready_check_interval=0.05, http_timeout=1)
        return spawner, await asyncio.wait_for(spawner._start(), 60)

    spawner, returned = asyncio.run(scenario())
    assert returned == url and getattr(spawner, "pod_id", None) != "old"
