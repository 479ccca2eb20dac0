"""benchmarks/node.py's clocks: one start through the hub, timed from the spawn
request to JupyterLab answering through the proxy and on the pod's IP, and a
watch on the pods that notes when each step of the start was first seen."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USER_LABEL = "hub.jupyter.org/username"
POLL = 0.05  # seconds between two tries of a URL


def steps_seen(pod: dict) -> list[str]:
    """The steps of a start this state of the pod shows (in start order)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    steps = ["pod created"]
    if spec.get("nodeName"):
        steps.append("scheduled")
    for c in status.get("initContainerStatuses") or []:
        state = c.get("state") or {}
        if "running" in state or "terminated" in state:
            steps.append(f"{c['name']} started")
        if "terminated" in state:
            steps.append(f"{c['name']} done")
    for c in status.get("containerStatuses") or []:
        if "running" in (c.get("state") or {}):
            steps.append(f"{c['name']} started")
    if any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []):
        steps.append("pod ready")
    return steps


class PodWatch:
    """The pods of a namespace by their hub user, as a watch reports them, and when
    each step of a start was first seen for the users being timed."""

    def __init__(self, kubeconfig: Path, namespace: str):
        self.kubeconfig, self.namespace = kubeconfig, namespace
        self.pods: dict[str, dict] = {}
        self.marks: dict[str, dict[str, float]] = {}
        self._task: asyncio.Task | None = None
        self._client: Any = None

    async def start(self) -> None:
        from kubernetes_asyncio import client, config

        self._client = await config.new_client_from_config(config_file=str(self.kubeconfig))
        core = client.CoreV1Api(self._client)
        self._task = asyncio.ensure_future(self._run(core))

    async def _run(self, core) -> None:
        from kubernetes_asyncio import watch

        while True:
            stream = watch.Watch().stream(core.list_namespaced_pod, self.namespace, timeout_seconds=300)
            async for event in stream:
                self._seen(event["type"], event["raw_object"])

    def _seen(self, kind: str, pod: dict) -> None:
        user = ((pod.get("metadata") or {}).get("labels") or {}).get(USER_LABEL)
        if not user:
            return
        if kind == "DELETED":
            self.pods.pop(user, None)
            return
        self.pods[user] = pod
        marks = self.marks.get(user)
        if marks is not None:
            now = asyncio.get_running_loop().time()
            for step in steps_seen(pod):
                marks.setdefault(step, now)

    def begin(self, user: str) -> dict[str, float]:
        self.marks[user] = {}
        return self.marks[user]

    def has_pod(self, user: str) -> bool:
        return user in self.pods

    def pod_ip(self, user: str) -> str | None:
        return ((self.pods.get(user) or {}).get("status") or {}).get("podIP")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client:
            await self._client.close()


@dataclass
class Start:
    proxy_s: float  # spawn request -> JupyterLab answering through the proxy
    pod_ip_s: float | None  # spawn request -> JupyterLab answering on the pod's IP
    phases: dict[str, float] = field(default_factory=dict)  # step -> seconds after the request

    def as_dict(self) -> dict:
        return {"proxy_s": self.proxy_s, "pod_ip_s": self.pod_ip_s, "phases": self.phases}


async def _answers(http, url: str, token: str) -> bool:
    """JupyterLab's own answer to /api/status (not the hub's redirect or error)."""
    from tornado.httpclient import HTTPClientError

    try:
        response = await http.fetch(url, headers={"Authorization": f"token {token}"}, follow_redirects=False,
                                    request_timeout=5, raise_error=False)
    except (OSError, HTTPClientError):  # not listening yet, or too slow
        return False
    if response.code != 200:
        return False
    try:
        return "started" in json.loads(response.body)
    except ValueError:
        return False


async def _first_answer(http, url_of, token: str, t0: float) -> float:
    loop = asyncio.get_running_loop()
    while True:
        url = url_of()
        if url and await _answers(http, url, token):
            return loop.time() - t0
        await asyncio.sleep(POLL)


async def time_start(api, watch: PodWatch, hub_url: str, user: str, token: str, user_options: dict) -> Start:
    """Ask the hub to start `user`'s server; time JupyterLab's first answers."""
    from tornado.httpclient import AsyncHTTPClient

    http = AsyncHTTPClient()
    loop = asyncio.get_running_loop()
    marks = watch.begin(user)
    t0 = loop.time()
    request = asyncio.ensure_future(api.start_server(user, "", user_options))
    on_ip = asyncio.ensure_future(_first_answer(
        http, lambda: (ip := watch.pod_ip(user)) and f"http://{ip}:8888/user/{user}/api/status", token, t0))
    try:
        async with asyncio.timeout(600):
            proxy_s = await _first_answer(http, lambda: f"{hub_url}user/{user}/api/status", token, t0)
            await request  # the hub answered the request (an error there is raised here)
        pod_ip_s = on_ip.result() if on_ip.done() else None
    finally:
        on_ip.cancel()
    return Start(proxy_s, pod_ip_s, {step: at - t0 for step, at in marks.items()})
