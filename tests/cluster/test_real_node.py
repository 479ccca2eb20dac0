"""DsbuildSpawner on the test cluster's real node (tests/cluster/node.sh): a
kubelet with containerd pulls a dsbuild image from the cluster's registry
(pushed there by `dsbuild build --registry --push`), mounts a real home
volume and a read-only data volume, and JupyterLab answers on the pod's IP.

These servers run `jupyter lab` with a token of the test's own instead of
`jupyterhub-singleuser`, which needs a hub to talk to (the hub tests do that)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from dsbuild.spawner.errors import SpawnFailed

from . import objects, realnode
from .conftest import RUN_DIR
from .hub import make_spawner, spawn

pytestmark = pytest.mark.cluster
TOKEN = uuid.uuid4().hex
# What jupyterhub-singleuser takes from the hub's environment, given to `jupyter lab`.
LAB_ARGS = [f"--IdentityProvider.token={TOKEN}", "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8888"]


def node_spawner(real_node, image, name, namespace, **config):
    return make_spawner(name, namespace, catalog=realnode.catalog(image), **real_node.spawner_config(
        cmd=["jupyter", "lab"], args=LAB_ARGS, **config))


def lab(url: str, path: str, method: str = "GET", body: dict | None = None, timeout: float = 10):
    """Call JupyterLab's REST API on the pod's IP; the decoded JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method,
                                     headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_for_lab(url: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return lab(url, "/api/status")
        except (OSError, urllib.error.URLError) as error:
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab at {url} did not answer: {error}") from None
            time.sleep(0.5)


def in_pod(cluster, spawner, *command: str, check: bool = True) -> str:
    return cluster("exec", spawner.pod_name, "-n", spawner.namespace, "-c", "notebook", "--", *command, check=check)


def test_the_real_node_reports_its_capacity_less_a_reservation_with_its_label_and_taint(cluster, real_node):
    node = cluster.get("node", real_node.name)
    assert node["metadata"]["labels"][objects.POOL_LABEL] == realnode.NODE_POOL
    assert {"key": realnode.TAINT_KEY, "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]
    capacity, allocatable = node["status"]["capacity"], node["status"]["allocatable"]
    assert capacity["cpu"] == str(os.cpu_count())
    assert allocatable["cpu"] == f"{os.cpu_count() * 1000 - 500}m"  # systemReserved cpu: 500m
    reserved_kib = int(capacity["memory"].removesuffix("Ki")) - int(allocatable["memory"].removesuffix("Ki"))
    assert reserved_kib == 4 * 2**20 + 256 * 2**10  # systemReserved 4Gi + hard eviction 256Mi
    # The simulated nodes are still there beside it.
    assert len(cluster.get("node", selector="type=kwok")) >= 8


def test_a_registry_image_runs_on_the_real_node_and_jupyterlab_has_the_chosen_cpu_and_memory(
        cluster, real_node, node_image, node_namespace, run):
    async def scenario():
        spawner = node_spawner(real_node, node_image, "nora", node_namespace)
        url = await spawn(spawner, {"cpu": "0.5", "memory": "1Gi"})
        return spawner, url, await spawner.poll()

    spawner, url, running = run(scenario(), timeout=420)
    try:
        assert running is None
        pod = cluster.get("pod", spawner.pod_name, namespace=node_namespace)
        assert pod["spec"]["nodeName"] == real_node.name
        assert url == f"http://{pod['status']['podIP']}:8888"
        status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "notebook")
        assert status["image"] == node_image and node_image.startswith(real_node.registry + "/")
        assert "@sha256:" in status["imageID"]  # pulled from the registry by digest
        assert wait_for_lab(url)["started"]
        # The container's own cgroup (v1 on these machines) holds the choice: 0.5 CPU, 1Gi.
        quota = int(in_pod(cluster, spawner, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"))
        period = int(in_pod(cluster, spawner, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
        assert quota / period == 0.5
        assert int(in_pod(cluster, spawner, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")) == 2**30
        assert in_pod(cluster, spawner, "id", "-u").strip() == "1000"
    finally:
        run(spawner.stop())
    assert cluster.get("pod", spawner.pod_name, namespace=node_namespace) is None
    assert run(spawner.poll()) == 1


def test_the_home_shows_the_repository_and_keeps_the_users_files_across_stop_and_start(
        cluster, real_node, node_image, node_namespace, run):
    async def start(state=None):
        spawner = node_spawner(real_node, node_image, "hana", node_namespace, state=state)
        return spawner, await spawn(spawner, {})

    spawner, url = run(start(), timeout=420)
    try:
        wait_for_lab(url)
        names = {item["name"] for item in lab(url, "/api/contents/")["content"]}
        assert {"README.md", "notebooks"} <= names  # the repository, not an empty volume
        notebook = lab(url, f"/api/contents/{realnode.NOTEBOOK}")
        assert notebook["content"]["cells"][0]["source"] == "From the repository."
        lab(url, "/api/contents/results.txt", "PUT", {"type": "file", "format": "text", "content": "mine"})
        notebook["content"]["cells"][0]["source"] = "Edited by the user."
        lab(url, f"/api/contents/{realnode.NOTEBOOK}", "PUT",
            {"type": "notebook", "format": "json", "content": notebook["content"]})
        state = spawner.get_state()
    finally:
        run(spawner.stop())

    spawner, url = run(start(state), timeout=420)
    try:
        wait_for_lab(url)
        assert lab(url, "/api/contents/results.txt")["content"] == "mine"
        edited = lab(url, f"/api/contents/{realnode.NOTEBOOK}")["content"]["cells"][0]["source"]
        assert edited == "Edited by the user."  # not overwritten by the image's copy
        logs = cluster("logs", spawner.pod_name, "-n", node_namespace, "-c", "home-init")
        assert "nothing copied" in logs
    finally:
        run(spawner.stop())


def test_the_shared_data_volume_is_read_only_inside_the_pod(cluster, real_node, node_image, node_namespace, run):
    async def start():
        spawner = node_spawner(real_node, node_image, "dana", node_namespace)
        await spawn(spawner, {})
        return spawner

    spawner = run(start(), timeout=420)
    try:
        assert in_pod(cluster, spawner, "cat", f"/data/datasets/{realnode.DATA_FILE}") == "shared data\n"
        with pytest.raises(Exception, match="Read-only file system"):
            in_pod(cluster, spawner, "touch", "/data/datasets/mine.txt")
        in_pod(cluster, spawner, "touch", "/home/jovyan/mine.txt")  # the home is writable
    finally:
        run(spawner.stop())


def test_an_image_missing_from_the_registry_fails_the_spawn_with_the_nodes_reason_and_no_pod(
        cluster, real_node, node_namespace, run):
    missing = f"{real_node.registry}/dsbuild-never-pushed:{uuid.uuid4().hex[:12]}"

    async def scenario():
        spawner = node_spawner(real_node, missing, "mira", node_namespace, start_timeout=600)
        with pytest.raises(SpawnFailed) as failure:  # not start_timeout's TimeoutError
            await spawn(spawner, {})
        return spawner, failure.value

    spawner, failure = run(scenario(), timeout=300)
    message = failure.jupyterhub_message
    assert message.startswith(f"The node could not pull the image {missing}: ")
    assert "not found" in message
    assert cluster.get("pod", spawner.pod_name, namespace=node_namespace) is None


def restart_kubelet(cluster, node_name: str) -> None:
    """Stop the node's kubelet (SIGTERM) and start it again with the same command
    line, as a service manager restarting it would; wait for the node to be Ready."""
    pid_file = RUN_DIR / "pids" / "kubelet.pid"
    pid = int(pid_file.read_text())
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    os.kill(pid, signal.SIGTERM)
    cluster.wait_for(lambda: not Path(f"/proc/{pid}").exists(), "the kubelet to exit")
    with open(RUN_DIR / "logs" / "kubelet.log", "ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    pid_file.write_text(f"{process.pid}\n")
    cluster("wait", "--for=condition=Ready", f"node/{node_name}", "--timeout=120s")


def test_a_running_server_keeps_working_while_the_kubelet_restarts(cluster, real_node, node_image, node_namespace, run):
    async def start():
        spawner = node_spawner(real_node, node_image, "kira", node_namespace)
        return spawner, await spawn(spawner, {})

    spawner, url = run(start(), timeout=420)
    try:
        before = wait_for_lab(url)
        lab(url, "/api/contents/before.txt", "PUT", {"type": "file", "format": "text", "content": "written before"})
        restart_kubelet(cluster, real_node.name)
        assert wait_for_lab(url, timeout=30)["started"] == before["started"]  # the same JupyterLab process
        assert lab(url, "/api/contents/before.txt")["content"] == "written before"
        assert run(spawner.poll()) is None
        pod = cluster.get("pod", spawner.pod_name, namespace=node_namespace)
        assert [s["restartCount"] for s in pod["status"]["containerStatuses"]] == [0]
    finally:
        run(spawner.stop())
    assert cluster.get("pod", spawner.pod_name, namespace=node_namespace) is None


async def run_in_kernel(url: str, kernel_id: str, code: str, timeout: float = 120) -> list[str]:
    """Send `code` to the kernel over JupyterLab's websocket, as JupyterLab does;
    return the kernel states reported on iopub until it goes idle, restarts or dies."""
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    connection = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {TOKEN}"}))
    session, msg_id = uuid.uuid4().hex, uuid.uuid4().hex
    connection.write_message(json.dumps({
        "header": {"msg_id": msg_id, "session": session, "username": "test", "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    states = []
    try:
        async with asyncio.timeout(timeout):
            while (raw := await connection.read_message()) is not None:
                message = json.loads(raw)
                if message["header"].get("msg_type") != "status":
                    continue
                state = message["content"]["execution_state"]
                ours = (message.get("parent_header") or {}).get("msg_id") == msg_id
                if state in ("restarting", "dead") or ours:  # not the busy/idle of the server's own requests
                    states.append(state)
                if state in ("restarting", "dead") or (ours and state == "idle"):
                    break
    finally:
        connection.close()
    return states


def test_a_kernel_over_the_memory_limit_is_killed_and_the_server_keeps_running(
        cluster, real_node, node_image, node_namespace, run):
    async def start():
        spawner = node_spawner(real_node, node_image, "olga", node_namespace)
        return spawner, await spawn(spawner, {"memory": "1Gi"})

    spawner, url = run(start(), timeout=420)
    try:
        started = wait_for_lab(url)["started"]
        kernel = lab(url, "/api/kernels", "POST", {"name": "python3"})
        assert run(run_in_kernel(url, kernel["id"], "print(6 * 7)"))[-1] == "idle"
        # 2 GiB of touched memory in a 1Gi container: the kernel's cgroup OOM-kills it.
        states = run(run_in_kernel(url, kernel["id"], "x = b'x' * (2 * 2**30)"))
        assert states[-1] in ("restarting", "dead")  # what JupyterLab shows as "the kernel died"
        # The kernel was killed by the memory cgroup's OOM killer (counted in the container's cgroup).
        oom_control = in_pod(cluster, spawner, "cat", "/sys/fs/cgroup/memory/memory.oom_control")
        assert int(dict(line.split() for line in oom_control.splitlines())["oom_kill"]) >= 1
        assert wait_for_lab(url)["started"] == started  # the server itself was not killed
        assert run(spawner.poll()) is None
        pod = cluster.get("pod", spawner.pod_name, namespace=node_namespace)
        assert [s["restartCount"] for s in pod["status"]["containerStatuses"]] == [0]
    finally:
        run(spawner.stop())
