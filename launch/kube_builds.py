"""`dsbuild serve --build-on kubernetes`: each build is a pod on the cluster, built by
the long-running build daemon on that pod's node (build_daemon.py).

The build pod is named and labelled after the image it builds; it holds the build's CPU
and memory (Guaranteed QoS, so the scheduler places it on a build node with room) and a
deadline (activeDeadlineSeconds), and runs nothing. Once it runs, the service's own
buildctl sends the build to the daemon on its node, with the pod's cgroup as the build's
`cgroup-parent`: every RUN step runs inside that pod's cgroup, under its limits. The
context, the index secret and the progress stay in the service, so the log streams to
the launch page like a local build's. When the build ends, fails or is abandoned, the
pod is deleted (the kubelet kills what is left in its cgroup). Images go to the
registry; their labels and lock are read from there.

The pod is rendered from templates/launch/build-pod.yaml.j2 (pure); the API calls are
in kube_api.py."""

from __future__ import annotations

import atexit
import hashlib
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import yaml

from dsbuild.builder.buildkit import BuildKitEngine
from dsbuild.builder.errors import BuildFailed, EngineUnavailable
from dsbuild.builder.limits import BuildPolicy
from dsbuild.builder.names import OCI_REVISION, OCI_SOURCE
from dsbuild.builder.progress import BuildEvent
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import Event, Status

from .build_daemon import (
    CLIENT_SECRET, DAEMON_LABELS, DAEMON_NAME, DAEMON_PORT, SERVER_NAME, SERVER_SECRET, DaemonSettings,
    daemon_objects, make_tls, tls_secrets, write_client_tls,
)
from .config import LaunchConfig, parse_pairs, parse_size
from .errors import ConfigInvalid
from .kube_api import KubeApi
from .templating import render_config

ROLE_LABEL = "app.kubernetes.io/component"
ROLE = "dsbuild-build"
IMAGE_LABEL = "dsbuild.io/image"
COMMIT_LABEL = "dsbuild.io/commit"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BuildPodSettings:
    namespace: str
    image: str  # the build daemons' image (the pod runs its /bin/sleep)
    cpu: str = "2"
    memory: str = "4Gi"
    deadline: int = 3600  # activeDeadlineSeconds
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    cgroup: str = "/kubepods/pod{uid}"  # a Guaranteed pod's cgroup on the node; {uid}, {uid_}
    ready_timeout: float = 300.0


def pod_cgroup(template: str, uid: str) -> str:
    """The node's cgroup of the Guaranteed pod `uid` (pure): {uid} is the uid, {uid_} the
    uid with underscores (the systemd driver's spelling)."""
    if not re.fullmatch(r"[0-9a-f-]{36}", uid):
        raise BuildFailed(f"not a pod uid: {uid!r}")
    return template.replace("{uid}", uid).replace("{uid_}", uid.replace("-", "_"))


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends (pure)."""
    return _LABEL_VALUE.sub("-", text)[:63].strip("-._")


def pod_name(repository: str, revision: str) -> str:
    """build-<image name>-<revision>-<random>: what it builds, unique per attempt (pure)."""
    name = re.sub(r"[^a-z0-9-]+", "-", repository.rsplit("/", 1)[-1].lower()).strip("-")[:30].strip("-")
    return f"build-{name}-{re.sub(r'[^a-z0-9]', '', revision.lower())[:12]}-{secrets.token_hex(3)}"


def build_pod(name: str, repository: str, labels: Mapping[str, str], settings: BuildPodSettings) -> dict:
    """The build pod (pure)."""
    revision = labels.get(OCI_REVISION, "")
    text = render_config(
        "build-pod.yaml.j2", pod=name, namespace=settings.namespace,
        labels={ROLE_LABEL: ROLE, "app.kubernetes.io/managed-by": "dsbuild",
                IMAGE_LABEL: label_value(repository.rsplit("/", 1)[-1]), COMMIT_LABEL: label_value(revision)},
        annotations={"dsbuild.io/repository": repository, "dsbuild.io/source": labels.get(OCI_SOURCE, ""),
                     "dsbuild.io/revision": revision},
        deadline=settings.deadline, node_selector=settings.node_selector, tolerations=list(settings.tolerations),
        image=settings.image, resources={"cpu": settings.cpu, "memory": settings.memory},
    )
    return yaml.safe_load(text)


def parse_toleration(value: str) -> dict:
    """KEY=VALUE:EFFECT or KEY:EFFECT (any value) -> a toleration (pure)."""
    pair, sep, effect = value.rpartition(":")
    key, has_value, val = pair.partition("=")
    if not sep or not key or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ConfigInvalid(f"--build-toleration wants KEY=VALUE:EFFECT (EFFECT: NoSchedule, PreferNoSchedule or "
                            f"NoExecute), got {value!r}")
    if has_value:
        return {"key": key, "operator": "Equal", "value": val, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def pod_settings(config: LaunchConfig) -> BuildPodSettings:
    """The service's --build-* settings as build pod settings (pure)."""
    return BuildPodSettings(
        namespace=config.build_namespace, image=config.build_image, cpu=config.build_cpu, memory=config.build_memory,
        deadline=config.build_deadline, node_selector=parse_pairs(config.build_node_selector, "--build-node-selector"),
        tolerations=tuple(parse_toleration(t) for t in config.build_tolerations),
        cgroup=config.build_cgroup,
    )


def daemon_settings(config: LaunchConfig) -> DaemonSettings:
    """The service's --build-* settings as the build daemons' settings (pure)."""
    pods = pod_settings(config)
    max_cache = str(parse_size(config.build_disk, "--build-disk"))  # buildkitd reads bytes, not "20Gi"
    return DaemonSettings(
        namespace=config.build_namespace, image=config.build_image, registry=config.build_registry or config.registry,
        root=config.build_daemon_root, max_cache=max_cache, host_network=config.build_host_network,
        node_selector=pods.node_selector, tolerations=pods.tolerations,
    )


def lease_name(image: str) -> str:
    """The Lease that one build of `image` holds: dsbuild-build-<hash of the image ref> (pure)."""
    return f"dsbuild-build-{hashlib.sha256(image.encode()).hexdigest()[:24]}"


def one_build_per_image(api: KubeApi, namespace: str, image: str, holder: str,
                        events: Callable[[], Iterator[Event]], seconds: int = 30) -> Iterator[Event]:
    """Run `events()` (a `build()`) while holding the image's Lease, renewed every
    `seconds`/3. A replica that finds it held waits for it; its own `build()` then finds
    the image in the registry and builds nothing."""
    name = lease_name(image)
    told = False
    while not api.try_lease(namespace, name, holder, seconds):
        if not told:
            yield Status("building", "another replica of this service is building this image; waiting for it")
            told = True
        time.sleep(1)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                api.renew_lease(namespace, name, holder)
            except EngineUnavailable:
                pass  # the API server is away for now: try again next time

    threading.Thread(target=renew, name=f"lease {name}", daemon=True).start()
    try:
        yield from events()
    finally:
        stop.set()
        api.release_lease(namespace, name, holder)


class KubernetesBuildEngine(BuildKitEngine):
    """BuildKitEngine that builds each image on the build daemon of a new build pod's node."""

    def __init__(self, settings: BuildPodSettings, daemons: DaemonSettings, registry: Registry, api: KubeApi,
                 cli: str | None = None, state: Path | None = None):
        super().__init__("", registry, cli, pull_registry=daemons.registry)
        self.settings = settings
        self.daemons = daemons
        self.api = api
        self._state = state  # where the client's TLS files go (a private temporary folder by default)
        self._tls: Path | None = None
        self._ensure = threading.Lock()

    def ping(self) -> str:
        self.api.ping()
        return "kubernetes"

    def ensure_daemons(self) -> str:
        """Create the build daemons' TLS Secrets (when missing), ConfigMap and DaemonSet,
        or bring them up to date; write the service's TLS files. What was done."""
        with self._ensure:
            namespace = self.daemons.namespace
            client = self._tls_secrets(namespace)
            folder = self._state
            if folder is None:  # private, removed when the service exits
                folder = Path(tempfile.mkdtemp(prefix="dsbuild-buildkitd-tls-"))
                atexit.register(shutil.rmtree, folder, True)
                self._state = folder
            self._tls = write_client_tls(client["data"], folder)
            done = [self.api.put(obj) for obj in daemon_objects(self.daemons, client["data"]["ca.crt"])]
            return f"build daemons {DAEMON_NAME} in {namespace}: {', '.join(done)}"

    def _tls_secrets(self, namespace: str, tries: int = 3) -> dict:
        """The service's TLS Secret; both halves are made when either is missing, or when
        they are of different CAs (two replicas made them at once: made again)."""
        for _ in range(tries):
            client = self.api.read("Secret", namespace, CLIENT_SECRET)
            server = self.api.read("Secret", namespace, SERVER_SECRET)
            if client and server and client["data"]["ca.crt"] == server["data"]["ca.crt"]:
                return client
            for secret in tls_secrets(namespace, make_tls()):
                self.api.put(secret)
        raise EngineUnavailable(f"the build daemons' TLS Secrets {SERVER_SECRET} and {CLIENT_SECRET} in {namespace} "
                                f"keep changing; is another service making them?")

    def daemon_address(self, node: str) -> str:
        """tcp://IP:PORT of the ready build daemon on `node`; BuildFailed after ready_timeout."""
        selector = ",".join(f"{k}={v}" for k, v in DAEMON_LABELS.items())
        deadline = time.monotonic() + self.settings.ready_timeout
        while True:
            for pod in self.api.pods_on_node(self.daemons.namespace, selector, node):
                status = pod.get("status") or {}
                ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
                if ready and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
                    return f"tcp://{status['podIP']}:{DAEMON_PORT}"
            if time.monotonic() > deadline:
                raise BuildFailed(f"no build daemon ({DAEMON_NAME}) became ready on node {node} within "
                                  f"{self.settings.ready_timeout:.0f} s")
            time.sleep(1)

    def build(self, context: Path, dockerfile: Path, phases: Sequence[str], labels: Mapping[str, str] = {},
              no_cache: bool = False, policy: BuildPolicy = BuildPolicy(), secrets: Mapping[str, Path] = {},
              repository: str = "", base: str | None = None) -> Iterator[BuildEvent]:
        if self._tls is None:
            self.ensure_daemons()
        name = pod_name(repository, labels.get(OCI_REVISION, "build"))
        namespace = self.settings.namespace
        try:
            uid = self.api.create_pod(namespace, build_pod(name, repository, labels, self.settings))
            pod = self.api.wait_pod_ready(namespace, name, self.settings.ready_timeout)
            engine = BuildKitEngine(self.daemon_address(pod.spec.node_name), self.registry, self.cli,
                                    self.pull_registry, tls_dir=self._tls, server_name=SERVER_NAME,
                                    cgroup_parent=pod_cgroup(self.settings.cgroup, uid))
            # The build stops before its pod's deadline kills what runs in the pod's cgroup.
            deadline = min(policy.deadline or self.settings.deadline, max(self.settings.deadline - 30, 1))
            yield from engine.build(context, dockerfile, phases, labels, no_cache, replace(policy, deadline=deadline),
                                    secrets, repository, base)
        finally:
            self.api.delete_pod(namespace, name)
