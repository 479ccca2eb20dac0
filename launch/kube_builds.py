"""`dsbuild serve --build-on kubernetes`: each build is a pod on the cluster.

The pod runs buildkitd (rootful: privileged, with Debian's runc; its build steps get
their own CNI bridge inside it), named and labelled after the image it builds, with CPU,
memory and disk limits and activeDeadlineSeconds. The service's own buildctl drives it
over TCP (BuildKitEngine), so the context, the index secret and the progress stay in
the service: the build's log streams to the launch page like a local build's. When the
build ends, fails or is abandoned, the pod is deleted (its ConfigMap goes with it, as
its owner). Images go to the registry; their labels and lock are read from there.

The pod objects are rendered from templates/launch/build-pod.yaml.j2 (pure); the API
calls are in kube_api.py."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import yaml

from dsbuild.builder.buildkit import BuildKitEngine, buildkitd_config
from dsbuild.builder.limits import BuildPolicy
from dsbuild.builder.names import OCI_REVISION, OCI_SOURCE
from dsbuild.builder.progress import BuildEvent
from dsbuild.builder.registry import Registry
from dsbuild.builder.service import Event, Status

from .config import LaunchConfig
from .errors import ConfigInvalid
from .kube_api import KubeApi
from .templating import render_config

BUILD_PORT = 1234
# The build steps' network inside a build pod. On the node's network (--build-host-network)
# the bridge is the node's: the pod's port keeps a second build pod off that node, and the
# bridge stays (one per node, reused) after the pod goes.
BUILD_BRIDGE = "dsbuild-bk0"
BUILD_SUBNET = "10.160.0.0/24"
ROLE_LABEL = "app.kubernetes.io/component"
ROLE = "dsbuild-build"
IMAGE_LABEL = "dsbuild.io/image"
COMMIT_LABEL = "dsbuild.io/commit"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BuildPodSettings:
    namespace: str
    image: str  # with buildkitd, buildctl, runc and the CNI plugins
    registry: str  # HOST:PORT of the registry as build pods reach it
    cpu: str = "2"
    memory: str = "4Gi"
    disk: str = "20Gi"
    deadline: int = 3600  # activeDeadlineSeconds
    host_network: bool = False
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    ready_timeout: float = 300.0


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends (pure)."""
    return _LABEL_VALUE.sub("-", text)[:63].strip("-._")


def pod_name(repository: str, revision: str) -> str:
    """build-<image name>-<revision>-<random>: what it builds, unique per attempt (pure)."""
    name = re.sub(r"[^a-z0-9-]+", "-", repository.rsplit("/", 1)[-1].lower()).strip("-")[:30].strip("-")
    return f"build-{name}-{re.sub(r'[^a-z0-9]', '', revision.lower())[:12]}-{secrets.token_hex(3)}"


def build_pod_objects(name: str, repository: str, labels: Mapping[str, str], settings: BuildPodSettings,
                      port: int = BUILD_PORT) -> list[dict]:
    """The build pod and its ConfigMap (pure)."""
    revision = labels.get(OCI_REVISION, "")
    config = buildkitd_config("/var/lib/buildkit", [], [settings.registry], BUILD_BRIDGE, BUILD_SUBNET)
    text = render_config(
        "build-pod.yaml.j2", pod=name, namespace=settings.namespace,
        labels={ROLE_LABEL: ROLE, "app.kubernetes.io/managed-by": "dsbuild",
                IMAGE_LABEL: label_value(repository.rsplit("/", 1)[-1]), COMMIT_LABEL: label_value(revision)},
        annotations={"dsbuild.io/repository": repository, "dsbuild.io/source": labels.get(OCI_SOURCE, ""),
                     "dsbuild.io/revision": revision},
        deadline=settings.deadline, host_network=settings.host_network, node_selector=settings.node_selector,
        tolerations=list(settings.tolerations), image=settings.image, port=port, config=config,
        resources={"cpu": settings.cpu, "memory": settings.memory}, disk=settings.disk,
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def parse_pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """KEY=VALUE strings -> a dict; ConfigInvalid names the option (pure)."""
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ConfigInvalid(f"{what} wants KEY=VALUE, got {value!r}")
        pairs[key] = val
    return pairs


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
        namespace=config.build_namespace, image=config.build_image,
        registry=config.build_registry or config.registry, cpu=config.build_cpu, memory=config.build_memory,
        disk=config.build_disk, deadline=config.build_deadline, host_network=config.build_host_network,
        node_selector=parse_pairs(config.build_node_selector, "--build-node-selector"),
        tolerations=tuple(parse_toleration(t) for t in config.build_tolerations),
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
            api.renew_lease(namespace, name, holder)

    threading.Thread(target=renew, name=f"lease {name}", daemon=True).start()
    try:
        yield from events()
    finally:
        stop.set()
        api.release_lease(namespace, name, holder)


class KubernetesBuildEngine(BuildKitEngine):
    """BuildKitEngine whose buildkitd is a new pod for each build."""

    def __init__(self, settings: BuildPodSettings, registry: Registry, api: KubeApi, cli: str | None = None):
        super().__init__("", registry, cli, pull_registry=settings.registry)
        self.settings = settings
        self.api = api

    def ping(self) -> str:
        self.api.ping()
        return "kubernetes"

    def build(self, context: Path, dockerfile: Path, phases: Sequence[str], labels: Mapping[str, str] = {},
              no_cache: bool = False, policy: BuildPolicy = BuildPolicy(), secrets: Mapping[str, Path] = {},
              repository: str = "", base: str | None = None) -> Iterator[BuildEvent]:
        name = pod_name(repository, labels.get(OCI_REVISION, "build"))
        pod, config_map = build_pod_objects(name, repository, labels, self.settings)
        namespace = self.settings.namespace
        try:
            uid = self.api.create_pod(namespace, pod)
            self.api.create_owned_config_map(namespace, config_map, name, uid)
            ip = self.api.wait_pod_ready(namespace, name, self.settings.ready_timeout)
            engine = BuildKitEngine(f"tcp://{ip}:{BUILD_PORT}", self.registry, self.cli, self.pull_registry)
            yield from engine.build(context, dockerfile, phases, labels, no_cache, policy, secrets, repository, base)
        finally:
            self.api.delete_pod(namespace, name)
