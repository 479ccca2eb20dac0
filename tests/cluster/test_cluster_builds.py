"""`dsbuild serve --build-on kubernetes` on the test cluster's real node: a launch link
builds in a BuildKit pod (the image from tests/buildkit/image.sh, in the cluster's
registry), pushes, and the pod is gone afterwards; two replicas' builds of one image
take turns through a real Lease. The launch service runs in-process with a fake hub
(the hub on Kubernetes is tested in test_hub_node.py); builds, pods, the registry and
the Lease are real. Rootful: the build pod is privileged (docs/cluster.md)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.pythons import DEFAULT_SUITE, base_ref
from dsbuild.builder.registry import Registry, manifest_exists
from dsbuild.builder.service import Status
from dsbuild.launch.app import make_app
from dsbuild.launch.kube_api import KubeApi
from dsbuild.launch.kube_builds import BUILD_BRIDGE, ROLE, ROLE_LABEL, lease_name, one_build_per_image
from dsbuild.launch.launcher import Launcher
from tests.buildkit.daemon import build_buildkit, buildkit_bin
from tests.launch.conftest import FakeHub, config, get, serve
from tests.launch.test_app import events_of, git_path, stream_url_of

from . import objects, realnode
from .kube import Kubectl

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def build_namespace(cluster: Kubectl):
    """A namespace for build pods (privileged: buildkitd is rootful) and Leases."""
    name = f"dsbuild-builds-{uuid.uuid4().hex[:6]}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}})
    yield name
    cluster("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)
    subprocess.run(["ip", "link", "delete", BUILD_BRIDGE], capture_output=True)  # on the node's network


@pytest.fixture(scope="module")
def build_image(real_node: realnode.RealNode) -> str:
    """The build pods' image, and the default base, in the cluster's registry."""
    if buildkit_bin() is None and build_buildkit()[0] is None:
        pytest.fail("buildkitd/buildctl could not be built (tests/buildkit/build.sh)")
    done = subprocess.run([str(ROOT / "tests/buildkit/image.sh"), real_node.registry], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    docker, base = DockerEngine(), base_ref(DEFAULT_SUITE)
    pushed = f"{real_node.registry}/{base}"
    docker.tag(base, pushed)
    try:
        docker.push(pushed)
    finally:
        docker.remove_image(pushed)
    return done.stdout.strip().splitlines()[-1]


def launch_config(cluster: Kubectl, real_node: realnode.RealNode, image: str, namespace: str):
    return config(build_on="kubernetes", registry=real_node.registry, build_image=image, build_namespace=namespace,
                  build_host_network=True, build_cpu="1", build_memory="3Gi", build_deadline=1500,
                  build_node_selector=[f"{objects.POOL_LABEL}={realnode.NODE_POOL}"],
                  build_tolerations=[f"{realnode.TAINT_KEY}=true:NoSchedule"], kubeconfig=str(cluster.kubeconfig),
                  image_prefix=f"dsbuild-kb-{uuid.uuid4().hex[:4]}")


def build_pods(cluster: Kubectl, namespace: str) -> list[dict]:
    return cluster.get("pods", namespace=namespace, selector=f"{ROLE_LABEL}={ROLE}") or []


def test_a_launch_link_builds_in_a_pod_pushes_and_the_pod_is_gone(cluster, real_node, build_image, build_namespace,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("DSBUILD_BUILDCTL", str(buildkit_bin() / "buildctl"))  # the service's buildctl
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))  # the service's git mirrors and lock records
    repo = realnode.make_repo(tmp_path / "repo")
    cfg = launch_config(cluster, real_node, build_image, build_namespace)
    hub = FakeHub()
    launcher = Launcher(cfg, hub)

    async def main():
        base, server = await serve(make_app(cfg, launcher))
        try:
            page = await get(f"{base}/v2/{git_path(f'file://{repo}')}")
            assert page.code == 200, page.body[-500:]
            response = await AsyncHTTPClient().fetch(base + stream_url_of(page), raise_error=False,
                                                     request_timeout=1200)  # a cold build in a pod
            return response, await get(base + "/metrics")
        finally:
            server.stop()

    response, metrics = asyncio.run(main())
    events = events_of(response.body)
    assert events[-1]["phase"] == "ready", events[-12:]
    assert any(e.get("step") for e in events), "no build step was reported"
    ((_, _, options),) = hub.started
    name, tag = options["image"].removeprefix(real_node.registry + "/").split(":")
    assert manifest_exists(Registry(real_node.registry), name, tag)
    scheduled = cluster("get", "events", "-n", build_namespace, "--field-selector", "reason=Scheduled", "-o",
                        "jsonpath={.items[*].involvedObject.name}").split()
    assert any(pod.startswith("build-dsbuild-kb-") for pod in scheduled), scheduled
    cluster.wait_for(lambda: not build_pods(cluster, build_namespace), "the build pod to be gone")
    assert 'dsbuild_build_duration_seconds_count{outcome="built"} 1.0' in metrics.body.decode()


def test_two_replicas_build_one_image_once_through_a_lease(cluster, build_namespace):
    """Each replica runs what `build()` does: skip when the registry has the image, else
    build and push. The Lease makes the second wait, so it finds the image and skips."""
    api = KubeApi(str(cluster.kubeconfig))
    image = f"localhost:1/dsbuild-lease-{uuid.uuid4().hex[:6]}:x"
    registry: set[str] = set()  # what the replicas pushed
    running, overlaps, outcomes = [], [], {}
    lock = threading.Lock()

    def build(replica):
        def events():
            if image in registry:
                outcomes[replica] = "skipped"
                yield Status("skipped", f"{image} is already in the registry")
                return
            with lock:
                overlaps.append(len(running))
                running.append(replica)
            time.sleep(3)  # long enough for the other replica to find the Lease held
            with lock:
                running.remove(replica)
                registry.add(image)
            outcomes[replica] = "built"
            yield Status("building", replica)
        return events

    seen: dict[str, list] = {}

    def replica(who):
        seen[who] = list(one_build_per_image(api, build_namespace, image, who, build(who), seconds=15))

    threads = [threading.Thread(target=replica, args=(who,)) for who in ("replica-a", "replica-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes.values()) == ["built", "skipped"] and overlaps == [0]
    waited = [who for who, events in seen.items() if any("another replica" in e.message for e in events)]
    assert waited == [who for who, outcome in outcomes.items() if outcome == "skipped"]
    assert cluster.get("lease", lease_name(image), namespace=build_namespace) is None  # released


def test_a_build_nobody_waits_for_is_cancelled_and_its_pod_deleted(cluster, real_node, build_image, build_namespace,
                                                                    tmp_path, monkeypatch):
    monkeypatch.setenv("DSBUILD_BUILDCTL", str(buildkit_bin() / "buildctl"))
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    repo = realnode.make_repo(tmp_path / "abandoned")
    cfg = launch_config(cluster, real_node, build_image, build_namespace)
    launcher = Launcher(cfg, FakeHub())

    async def main():
        base, server = await serve(make_app(cfg, launcher))
        try:
            page = await get(f"{base}/v2/{git_path(f'file://{repo}')}")
            url = urlsplit(base + stream_url_of(page))
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            writer.write(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
            await writer.drain()
            loop, deadline = asyncio.get_running_loop(), time.monotonic() + 300
            while not await loop.run_in_executor(None, build_pods, cluster, build_namespace):
                assert time.monotonic() < deadline, "no build pod started"
                await asyncio.sleep(1)
            writer.close()  # the only launch stream goes away while its pod builds
            while launcher.registry.jobs and time.monotonic() < deadline + 300:
                await asyncio.sleep(0.5)
            return await get(base + "/metrics")
        finally:
            server.stop()

    metrics = asyncio.run(main()).body.decode()
    cluster.wait_for(lambda: not build_pods(cluster, build_namespace), "the cancelled build's pod to be gone")
    assert 'dsbuild_build_duration_seconds_count{outcome="failed"} 1.0' in metrics
    assert 'dsbuild_launches_total{outcome="closed"} 1.0' in metrics
