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
from dsbuild.launch.build_daemon import (
    CLIENT_SECRET, DAEMON_LABELS, DAEMON_PORT, RBAC_RULES, SERVER_SECRET, DaemonSettings, daemon_objects, make_tls,
    tls_secrets, write_client_tls,
)
from dsbuild.launch.kube_builds import (
    BuildPodSettings,
    build_pod,
    daemon_settings,
    lease_name,
    one_build_per_image,
    parse_toleration,
    pod_cgroup,
    pod_name,
    pod_settings,
)

from .conftest import config

SETTINGS = BuildPodSettings(namespace="builds", image="localhost:5000/dsbuild-buildkit:v0.34.2",
                            cpu="1", memory="2Gi", deadline=900, node_selector={"dsbuild.io/node-pool": "real"},
                            tolerations=({"key": "dsbuild.io/real-node", "operator": "Equal", "value": "true",
                                          "effect": "NoSchedule"},))
DAEMONS = DaemonSettings(namespace="builds", image=SETTINGS.image, registry="localhost:5000", root="/var/lib/bk",
                         max_cache="10737418240", node_selector=SETTINGS.node_selector, tolerations=SETTINGS.tolerations)
LABELS = {OCI_REVISION: "0123456789abcdef" * 2 + "01234567", OCI_SOURCE: "https://git.example/org/repo"}
UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_the_build_pod_says_what_it_builds_and_holds_its_limits():
    name = pod_name("localhost:5000/dsbuild-repo-1a2b3c", LABELS[OCI_REVISION])
    pod = build_pod(name, "localhost:5000/dsbuild-repo-1a2b3c", LABELS, SETTINGS)
    validate(pod, "1.33", strict=True)
    assert name.startswith("build-dsbuild-repo-1a2b3c-0123456789ab-") and len(name) <= 63
    labels = pod["metadata"]["labels"]
    assert labels["dsbuild.io/image"] == "dsbuild-repo-1a2b3c" and labels["dsbuild.io/commit"] == LABELS[OCI_REVISION]
    assert pod["metadata"]["annotations"]["dsbuild.io/source"] == "https://git.example/org/repo"
    spec = pod["spec"]
    assert spec["activeDeadlineSeconds"] == 900 and spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False and "hostNetwork" not in spec
    (container,) = spec["containers"]
    # Guaranteed QoS: its cgroup is kubepods/pod<uid>, limited to these, and the steps run in it.
    assert container["resources"]["limits"] == container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert container["securityContext"]["runAsNonRoot"] is True and "privileged" not in container["securityContext"]
    assert spec["nodeSelector"] == {"dsbuild.io/node-pool": "real"} and spec["tolerations"] == list(SETTINGS.tolerations)


def test_the_build_daemons_are_one_per_build_node_with_state_on_the_node_and_mutual_tls():
    daemon_set, config_map = daemon_objects(DAEMONS)
    validate(daemon_set, "1.33", strict=True)
    validate(config_map, "1.33", strict=True)
    assert daemon_set["kind"] == "DaemonSet" and daemon_set["metadata"]["labels"] == DAEMON_LABELS
    spec = daemon_set["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == SETTINGS.node_selector and spec["tolerations"] == list(SETTINGS.tolerations)
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert f"tcp://$(POD_IP):{DAEMON_PORT}" in container["args"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["root"]["hostPath"]["path"] == "/var/lib/bk"
    assert volumes["tls"]["secret"]["secretName"] == SERVER_SECRET  # never the service's half
    toml = tomllib.loads(config_map["data"]["buildkitd.toml"])
    assert toml["grpc"]["tls"]["ca"].endswith("/ca.crt")  # a client needs a certificate of the CA
    assert toml["registry"] == {"localhost:5000": {"http": True}}
    oci = toml["worker"]["oci"]
    assert oci["networkMode"] == "bridge" and oci["binary"] == "/usr/sbin/runc" and oci["maxUsedSpace"] == "10737418240"
    changed, _ = daemon_objects(DaemonSettings(**{**DAEMONS.__dict__, "image": "localhost:5000/other:1"}))
    hash_of = lambda d: d["spec"]["template"]["metadata"]["annotations"]  # noqa: E731
    assert hash_of(changed) != hash_of(daemon_set)  # a change rolls the daemons
    new_keys, _ = daemon_objects(DAEMONS, tls_ca="bmV3IENB")
    assert hash_of(new_keys) != hash_of(daemon_set)  # so do new keys (buildkitd reads them at start)


def test_the_tls_halves_and_their_files(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server, client = tls_secrets("builds", make_tls())
    assert (server["metadata"]["name"], client["metadata"]["name"]) == (SERVER_SECRET, CLIENT_SECRET)
    folder = write_client_tls(client["data"], tmp_path / "tls")
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in folder.iterdir())
    cert = x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes())
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (folder / "ca.crt").read_bytes() != b"" and b"PRIVATE KEY" not in (folder / "ca.crt").read_bytes()
    assert all("PRIVATE KEY" not in v for v in [server["data"].get("ca.key", "")])  # the CA's key is not kept


def test_the_rbac_rules_cover_what_the_engine_calls():
    granted = {(group, resource, verb) for rule in RBAC_RULES for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    for needed in [("apps", "daemonsets", "create"), ("apps", "daemonsets", "update"), ("", "secrets", "get"),
                   ("", "pods", "list"), ("", "pods", "delete"), ("coordination.k8s.io", "leases", "update")]:
        assert needed in granted


def test_the_steps_cgroup_is_the_build_pods():
    assert pod_cgroup("/kubepods/pod{uid}", UID) == f"/kubepods/pod{UID}"
    assert pod_cgroup("/kubepods.slice/kubepods-pod{uid_}.slice", UID) == \
        f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice"
    with pytest.raises(Exception, match="not a pod uid"):
        pod_cgroup("/kubepods/pod{uid}", "../../x")
    for bad in ("kubepods/pod{uid}", "/kubepods/pod", "/a/../b{uid}", "/a b/{uid}"):
        with pytest.raises(ConfigInvalid, match="--build-cgroup"):
            config(build_on="kubernetes", registry="localhost:5000", build_image="img", build_cgroup=bad)


def test_hostile_values_stay_values():
    hostile = {OCI_REVISION: 'x"\n  hostNetwork: true', OCI_SOURCE: "a\nb: c"}
    name = pod_name("localhost:5000/evil", hostile[OCI_REVISION])
    pod = build_pod(name, "localhost:5000/evil\nkind: Secret", hostile, SETTINGS)
    assert pod["kind"] == "Pod" and "hostNetwork" not in pod["spec"]
    assert pod["metadata"]["annotations"]["dsbuild.io/revision"] == hostile[OCI_REVISION]
    assert pod["metadata"]["labels"]["dsbuild.io/commit"] == "x-hostNetwork-true"


def test_settings_from_the_command_line():
    cfg = config(build_on="kubernetes", registry="localhost:5000", build_image="img", build_node_selector=["pool=real"],
                 build_tolerations=["dsbuild.io/real-node=true:NoSchedule", "gpu:NoExecute"],
                 build_cgroup="/dsbuild-test-node/kubepods/pod{uid}", build_daemon_root="/srv/bk")
    settings, daemons = pod_settings(cfg), daemon_settings(cfg)
    assert daemons.registry == "localhost:5000" and settings.node_selector == daemons.node_selector == {"pool": "real"}
    assert settings.tolerations[1] == {"key": "gpu", "operator": "Exists", "effect": "NoExecute"}
    assert settings.cgroup == "/dsbuild-test-node/kubepods/pod{uid}" and daemons.root == "/srv/bk"
    assert daemons.max_cache == str(20 * 2**30)  # --build-disk 20Gi, as bytes for buildkitd
    with pytest.raises(ConfigInvalid, match="--build-toleration wants KEY=VALUE:EFFECT"):
        parse_toleration("key=value")
    with pytest.raises(ConfigInvalid, match="needs --registry and --build-image"):
        config(build_on="kubernetes", registry="localhost:5000")
    with pytest.raises(ConfigInvalid, match="--build-disk: "):
        daemon_settings(config(build_on="kubernetes", registry="localhost:5000", build_image="img", build_disk="lots"))


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
