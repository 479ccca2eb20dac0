"""Builds on Kubernetes, the pure parts: the build pod and its ConfigMap, the settings,
the Lease's expiry; and that an abandoned build is cancelled (fakes for the engine)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import pytest
import tomllib
from kubernetes_validate import validate

from dsbuild.builder.names import OCI_REVISION, OCI_SOURCE
from dsbuild.builder.service import Status
from dsbuild.launch.builds import BuildKey, BuildRegistry
from dsbuild.launch.errors import ConfigInvalid
from dsbuild.launch.kube_api import lease_free
from dsbuild.launch.kube_builds import (
    BUILD_PORT,
    BuildPodSettings,
    build_pod_objects,
    lease_name,
    one_build_per_image,
    parse_toleration,
    pod_name,
    pod_settings,
)

from .conftest import config

SETTINGS = BuildPodSettings(namespace="builds", image="localhost:5000/dsbuild-buildkit:v0.34.2",
                            registry="localhost:5000", cpu="1", memory="2Gi", deadline=900,
                            node_selector={"dsbuild.io/node-pool": "real"},
                            tolerations=({"key": "dsbuild.io/real-node", "operator": "Equal", "value": "true",
                                          "effect": "NoSchedule"},))
LABELS = {OCI_REVISION: "0123456789abcdef" * 2 + "01234567", OCI_SOURCE: "https://git.example/org/repo"}


def test_the_build_pod_says_what_it_builds_and_is_limited():
    name = pod_name("localhost:5000/dsbuild-repo-1a2b3c", LABELS[OCI_REVISION])
    pod, config_map = build_pod_objects(name, "localhost:5000/dsbuild-repo-1a2b3c", LABELS, SETTINGS)
    validate(pod, "1.33", strict=True)
    validate(config_map, "1.33", strict=True)
    assert name.startswith("build-dsbuild-repo-1a2b3c-0123456789ab-") and len(name) <= 63
    labels = pod["metadata"]["labels"]
    assert labels["dsbuild.io/image"] == "dsbuild-repo-1a2b3c" and labels["dsbuild.io/commit"] == LABELS[OCI_REVISION]
    assert pod["metadata"]["annotations"]["dsbuild.io/source"] == "https://git.example/org/repo"
    spec = pod["spec"]
    assert spec["activeDeadlineSeconds"] == 900 and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and spec["hostNetwork"] is False
    (container,) = spec["containers"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert f"tcp://$(POD_IP):{BUILD_PORT}" in container["args"]
    assert spec["nodeSelector"] == {"dsbuild.io/node-pool": "real"} and spec["tolerations"] == list(SETTINGS.tolerations)
    toml = tomllib.loads(config_map["data"]["buildkitd.toml"])
    assert toml["registry"] == {"localhost:5000": {"http": True}}
    assert toml["worker"]["oci"]["networkMode"] == "bridge" and toml["worker"]["oci"]["binary"] == "/usr/sbin/runc"


def test_hostile_values_stay_values():
    hostile = {OCI_REVISION: 'x"\n  hostNetwork: true', OCI_SOURCE: "a\nb: c"}
    name = pod_name("localhost:5000/evil", hostile[OCI_REVISION])
    pod, _ = build_pod_objects(name, "localhost:5000/evil\nkind: Secret", hostile, SETTINGS)
    assert pod["kind"] == "Pod" and pod["spec"]["hostNetwork"] is False
    assert pod["metadata"]["annotations"]["dsbuild.io/revision"] == hostile[OCI_REVISION]
    assert pod["metadata"]["labels"]["dsbuild.io/commit"] == "x-hostNetwork-true"


def test_settings_from_the_command_line():
    settings = pod_settings(config(build_on="kubernetes", registry="localhost:5000", build_image="img",
                                   build_node_selector=["pool=real"], build_tolerations=["dsbuild.io/real-node=true:NoSchedule",
                                                                                         "gpu:NoExecute"]))
    assert settings.registry == "localhost:5000" and settings.node_selector == {"pool": "real"}
    assert settings.tolerations[1] == {"key": "gpu", "operator": "Exists", "effect": "NoExecute"}
    with pytest.raises(ConfigInvalid, match="--build-toleration wants KEY=VALUE:EFFECT"):
        parse_toleration("key=value")
    with pytest.raises(ConfigInvalid, match="needs --registry and --build-image"):
        config(build_on="kubernetes", registry="localhost:5000")


def test_a_lease_is_free_when_its_holder_stopped_renewing():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    held = {"spec": {"holderIdentity": "a", "leaseDurationSeconds": 30,
                     "renewTime": (now - timedelta(seconds=10)).isoformat()}}
    assert not lease_free(held, now)
    assert lease_free(held, now + timedelta(seconds=25))
    assert lease_free({"spec": {}}, now)
    assert lease_name("localhost:5000/a:b") != lease_name("localhost:5000/a:c")
    assert len(lease_name("x" * 300)) <= 63


class FakeLeases:
    """The Lease calls in memory: one holder at a time."""

    def __init__(self):
        self.holder: str | None = None
        self.lock = threading.Lock()
        self.tries = 0

    def try_lease(self, namespace, name, holder, seconds):
        with self.lock:
            self.tries += 1
            if self.holder in (None, holder):
                self.holder = holder
                return True
            return False

    def renew_lease(self, namespace, name, holder):
        return self.holder == holder

    def release_lease(self, namespace, name, holder):
        with self.lock:
            if self.holder == holder:
                self.holder = None


def test_a_second_holder_waits_for_the_first():
    leases, order = FakeLeases(), []
    first_in = threading.Event()
    release_first = threading.Event()

    def build(who):
        def events():
            order.append(f"{who} builds")
            first_in.set()
            if who == "a":
                release_first.wait(10)
            yield Status("building", who)
        return events

    a = threading.Thread(target=lambda: list(one_build_per_image(leases, "ns", "img", "a", build("a"))))
    a.start()
    first_in.wait(10)
    waited = []
    b = threading.Thread(target=lambda: waited.extend(one_build_per_image(leases, "ns", "img", "b", build("b"))))
    b.start()
    while leases.tries < 2:
        threading.Event().wait(0.05)
    assert order == ["a builds"]  # b holds off while a holds the Lease
    release_first.set()
    a.join(10)
    b.join(10)
    assert order == ["a builds", "b builds"] and leases.holder is None
    assert "another replica" in waited[0].message


def test_a_build_nobody_follows_is_cancelled():
    closed = threading.Event()

    def events():
        try:
            for i in range(1000):
                yield Status("building", f"line {i}")
                threading.Event().wait(0.01)
        finally:
            closed.set()  # GeneratorExit: the engine stops the build here

    async def main():
        registry = BuildRegistry(2, cancel_unwatched=True)
        job, _ = registry.join_or_start(BuildKey("https://git.example/r", "c" * 40), events, needs_build=True)
        following = job.follow()
        await following.__anext__()
        await following.aclose()  # the only launch stream closed
        while not job.done:
            await asyncio.sleep(0.02)
        return job

    job = asyncio.run(main())
    assert closed.is_set() and "cancelled" in str(job.error)
