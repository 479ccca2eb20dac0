"""`dsbuild serve --build-on kubernetes` on the test cluster's real node: the service puts
its build daemon (a DaemonSet of buildkitd, the image from tests/buildkit/image.sh in the
cluster's registry) on the node; a launch link builds there for a build pod that holds
the build's limits, pushes, and the pod is gone afterwards while the daemon and its cache
stay; a step over the build pod's memory is killed; the daemon takes no client without
the service's certificate; the package-cache attack of tests/security runs through it;
two repositories share the daemon's per-base apt cache; two replicas' builds of one
image take turns through a real Lease. The launch service runs in-process with a fake
hub (the hub on Kubernetes is tested in test_hub_node.py); builds, pods, the daemon, the
registry and the Lease are real. Rootful: the daemon is privileged (docs/launch.md)."""

from __future__ import annotations

import asyncio
import re
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
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.lock import LOCK_PATH, parse_lock
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource
from dsbuild.launch.build_daemon import (
    BUILD_BRIDGE, CLIENT_SECRET, DAEMON_LABELS, DAEMON_NAME, DAEMON_PORT, SERVER_NAME, make_tls, tls_secrets,
    write_client_tls,
)
from dsbuild.launch.kube_builds import ROLE, ROLE_LABEL, lease_name, one_build_per_image
from dsbuild.launch.preflight import engine_for
from dsbuild.launch.launcher import Launcher
from tests.buildkit.daemon import build_buildkit, buildkit_bin
from tests.launch.conftest import FakeHub, config, get, serve
from tests.launch.test_app import events_of, git_path, stream_url_of
from tests.security import test_caches_and_lock as attack
from tests.security.conftest import log_text, run_build, write_repo

from . import objects, realnode
from .buildaccount import write_service_kubeconfig
from .kube import Kubectl

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


NODE_CGROUP = "/dsbuild-test-node/kubepods/pod{uid}"  # node.sh: cgroupfs driver, cgroupRoot /dsbuild-test-node


def daemon_root(namespace: str) -> Path:
    return Path(f"/var/lib/dsbuild-test-buildkit/{namespace}")


@pytest.fixture(scope="module")
def build_namespace(cluster: Kubectl):
    """A namespace for the build daemon, build pods (privileged: buildkitd is rootful) and
    Leases; afterwards the daemon's state on the node and its bridge go too."""
    name = f"dsbuild-builds-{uuid.uuid4().hex[:6]}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}})
    yield name
    cluster("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)
    subprocess.run(["ip", "link", "delete", BUILD_BRIDGE], capture_output=True)  # on the node's network
    subprocess.run(["rm", "-rf", "--one-file-system", str(daemon_root(name))], check=False)
    subprocess.run(["rmdir", str(daemon_root(name).parent)], capture_output=True)  # when no other run uses it


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


@pytest.fixture(scope="module")
def service_kubeconfig(cluster: Kubectl, build_namespace: str, tmp_path_factory) -> Path:
    """The service talks to the cluster with only RBAC_RULES in the build namespace."""
    return write_service_kubeconfig(cluster, build_namespace, tmp_path_factory.mktemp("serve") / "kubeconfig")


def launch_config(kubeconfig: Path, real_node: realnode.RealNode, image: str, namespace: str, **settings):
    return config(**{"build_on": "kubernetes", "registry": real_node.registry, "build_image": image,
                     "build_namespace": namespace, "build_host_network": True, "build_cpu": "1",
                     "build_memory": "3Gi", "build_deadline": 1500,
                     "build_node_selector": [f"{objects.POOL_LABEL}={realnode.NODE_POOL}"],
                     "build_tolerations": [f"{realnode.TAINT_KEY}=true:NoSchedule"],
                     "build_cgroup": NODE_CGROUP, "build_daemon_root": str(daemon_root(namespace)),
                     "kubeconfig": str(kubeconfig), "image_prefix": f"dsbuild-kb-{uuid.uuid4().hex[:4]}",
                     **settings})


def build_pods(cluster: Kubectl, namespace: str) -> list[dict]:
    return cluster.get("pods", namespace=namespace, selector=f"{ROLE_LABEL}={ROLE}") or []


def daemon_pods(cluster: Kubectl, namespace: str) -> list[dict]:
    selector = ",".join(f"{k}={v}" for k, v in DAEMON_LABELS.items())
    return cluster.get("pods", namespace=namespace, selector=selector) or []


def launch(cfg, repo: Path, timeout: float = 1200) -> tuple[list[dict], FakeHub, str]:
    """A launch link of `repo` through the service in-process: its events, the hub, /metrics."""
    hub = FakeHub()
    launcher = Launcher(cfg, hub)

    async def main():
        base, server = await serve(make_app(cfg, launcher))
        try:
            page = await get(f"{base}/v2/{git_path(f'file://{repo}')}")
            assert page.code == 200, page.body[-500:]
            response = await AsyncHTTPClient().fetch(base + stream_url_of(page), raise_error=False,
                                                     request_timeout=timeout)
            return response, await get(base + "/metrics")
        finally:
            server.stop()

    response, metrics = asyncio.run(main())
    return events_of(response.body), hub, metrics.body.decode()


@pytest.fixture
def service_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DSBUILD_BUILDCTL", str(buildkit_bin() / "buildctl"))  # the service's buildctl
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))  # the service's git mirrors and lock records


def test_a_launch_link_builds_on_the_nodes_daemon_pushes_and_the_pod_is_gone(service_kubeconfig, cluster, real_node, build_image,
                                                                            build_namespace, tmp_path, service_env):
    repo = realnode.make_repo(tmp_path / "repo")
    cfg = launch_config(service_kubeconfig, real_node, build_image, build_namespace)
    events, hub, metrics = launch(cfg, repo)
    assert events[-1]["phase"] == "ready", events[-12:]
    assert any(e.get("step") for e in events), "no build step was reported"
    ((_, _, options),) = hub.started
    name, tag = options["image"].removeprefix(real_node.registry + "/").split(":")
    assert manifest_exists(Registry(real_node.registry), name, tag)
    scheduled = cluster("get", "events", "-n", build_namespace, "--field-selector", "reason=Scheduled", "-o",
                        "jsonpath={.items[*].involvedObject.name}").split()
    assert any(pod.startswith("build-dsbuild-kb-") for pod in scheduled), scheduled
    cluster.wait_for(lambda: not build_pods(cluster, build_namespace), "the build pod to be gone")
    assert 'dsbuild_build_duration_seconds_count{outcome="built"} 1.0' in metrics
    # The daemon stays, with its state on the node: one per build node.
    (daemon,) = daemon_pods(cluster, build_namespace)
    assert daemon["spec"]["nodeName"] == real_node.name and daemon["status"]["phase"] == "Running"
    assert cluster.get("daemonset", DAEMON_NAME, namespace=build_namespace)["metadata"]["labels"] == DAEMON_LABELS
    assert (daemon_root(build_namespace) / "runc-overlayfs").is_dir()


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


def test_a_build_nobody_waits_for_is_cancelled_and_its_pod_deleted(service_kubeconfig, cluster, real_node, build_image, build_namespace,
                                                                    tmp_path, service_env):
    repo = realnode.make_repo(tmp_path / "abandoned")
    cfg = launch_config(service_kubeconfig, real_node, build_image, build_namespace)
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


def _buildctl(address: str, *tls: str) -> subprocess.CompletedProcess:
    """`buildctl debug workers` against the daemon; a client that hangs counts as refused."""
    args = [str(buildkit_bin() / "buildctl"), "--addr", address, *tls, "debug", "workers"]
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(args, -1, "", f"no answer in 60 s: {err.stderr}")


def test_the_daemon_takes_only_the_services_certificate(cluster, build_namespace, tmp_path):
    """Build steps and other pods reach the node's addresses; the daemon's port asks for a
    client certificate of its own CA, which only the service's Secret holds."""
    (daemon,) = daemon_pods(cluster, build_namespace)  # put there by the launch test
    address = f"tcp://{daemon['status']['podIP']}:{DAEMON_PORT}"
    secret = cluster.get("secret", CLIENT_SECRET, namespace=build_namespace)
    ours = write_client_tls(secret["data"], tmp_path / "ours")
    stranger = write_client_tls(tls_secrets(build_namespace, make_tls())[1]["data"], tmp_path / "stranger")
    assert _buildctl(address, "--tlsdir", str(ours), "--tlsservername", SERVER_NAME).returncode == 0
    plain = _buildctl(address)
    assert plain.returncode != 0
    other_ca = _buildctl(address, "--tlsdir", str(stranger), "--tlsservername", SERVER_NAME)
    assert other_ca.returncode != 0 and "certificate" in other_ca.stderr, other_ca.stderr[-500:]


def test_a_step_over_the_build_pods_memory_is_killed(service_kubeconfig, cluster, real_node, build_image, build_namespace, tmp_path,
                                                     service_env):
    """The steps run in the build pod's cgroup (cgroup-parent), so its memory limit holds them."""
    repo = realnode.make_repo(tmp_path / "hungry")
    write_repo(repo, {"postBuild": "#!/bin/bash\nset -e\necho start\n"
                                   "python3 -c \"b = b'x' * (1536 * 2**20); print(len(b))\"\necho survived\n"})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@dsbuild.invalid"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "postBuild"], check=True)
    cfg = launch_config(service_kubeconfig, real_node, build_image, build_namespace, build_memory="768Mi")
    events, hub, _ = launch(cfg, repo)
    assert events[-1]["phase"] == "failed" and events[-1]["reason"] == "build", events[-5:]
    assert "exit code 137: killed, most likely out of memory" in events[-1]["message"], events[-1]
    assert not any("survived" in e.get("message", "") for e in events) and not hub.started
    cluster.wait_for(lambda: not build_pods(cluster, build_namespace), "the build pod to be gone")


def _kube_build(cfg, repo: Path, name: str):
    request = BuildRequest(LocalSource(repo), host=read_host_settings(), name=name,
                           registry=Registry(cfg.registry), push=True, force=True)
    built, events, error = run_build(request, engine_for(cfg))
    assert error is None, f"{error}\n" + "\n".join(getattr(error, "log_tail", ()))
    return built, log_text(events)


def test_the_cache_attack_through_the_build_daemon(service_kubeconfig, cluster, real_node, build_image, build_namespace, tmp_path,
                                                   service_env):
    """tests/security/test_caches_and_lock.py's attack, built on the cluster: the hostile
    setup.py writes into every cache it reaches, postBuild too; another repository's
    toolz must match its wheel's RECORD hashes, and the lock must be the true one."""
    cfg = launch_config(service_kubeconfig, real_node, build_image, build_namespace)
    engine = engine_for(cfg)
    hostile = write_repo(tmp_path / "hostile", {"requirements.txt": attack.PACKAGE + "\n", "setup.py": attack.SETUP_PY,
                                                "postBuild": attack.POSTBUILD})
    innocent = write_repo(tmp_path / "innocent", {"requirements.txt": attack.PACKAGE + "\n# the innocent one\n"})
    hostile_built, log = _kube_build(cfg, hostile, f"{cfg.image_prefix}-hostile")
    victim, _ = _kube_build(cfg, innocent, f"{cfg.image_prefix}-innocent")
    count = engine.read_file(hostile_built.image, "/home/jovyan/tampered-by-setup.txt")
    assert count is not None and int(count) > 0, "setup.py found no cached file to tamper with"
    assert attack._line(log, "TAMPERED-BY-POSTBUILD") == "TAMPERED-BY-POSTBUILD 0"
    assert attack._line(log, "LOCK-FORGED") == "LOCK-FORGED no"
    pins = parse_lock(engine.read_file(hostile_built.image, LOCK_PATH))
    assert pins.get("toolz") == "0.12.1" and "forged" not in pins
    docker = DockerEngine()
    subprocess.run([docker.cli, "pull", "-q", victim.image], check=True, capture_output=True)
    try:
        out = subprocess.run([docker.cli, "run", "--rm", "--network=none", "--entrypoint", "/srv/dsbuild/venv/bin/python",
                              victim.image, "-c", attack.RECORD_CHECK], capture_output=True, text=True, timeout=120)
    finally:
        docker.remove_image(victim.image)
    checked, bad, examples = out.stdout.split(" ", 2)
    assert int(checked) > 10 and int(bad) == 0, f"tampered files installed: {examples}"


def test_a_second_repository_on_the_node_reuses_the_daemons_package_cache(service_kubeconfig, cluster, real_node, build_image,
                                                                          build_namespace, tmp_path, service_env):
    """apt's downloads are cached per base image (as on one machine): the second
    repository's apt step downloads only what the first did not."""
    cfg = launch_config(service_kubeconfig, real_node, build_image, build_namespace)
    first = write_repo(tmp_path / "first", {"apt.txt": "figlet\n"})
    second = write_repo(tmp_path / "second", {"apt.txt": "figlet\nsl\n"})
    _, first_log = _kube_build(cfg, first, f"{cfg.image_prefix}-first")
    _, second_log = _kube_build(cfg, second, f"{cfg.image_prefix}-second")

    def fetched(log: str, package: str) -> bool:
        return re.search(rf"^Get:\d+ \S+ \S+ \S+ {package} ", log, re.M) is not None

    assert fetched(first_log, "figlet"), first_log[-3000:]
    assert fetched(second_log, "sl") and not fetched(second_log, "figlet"), second_log[-3000:]
