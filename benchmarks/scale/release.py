"""The hub the run drives with `--release`: the project's Helm chart installed into the
test cluster the way tests/cluster/test_helm_release.py installs it (its helpers,
tests/cluster/helmrelease.py): the hub and configurable-http-proxy as the release's
pods on the real node, on the node's network (network.mode=hostNetwork), the hub's
sqlite database on its volume there; the users' servers on the run's simulated nodes
(singleuser.nodeSelector), at the stub's port (hub.extraConfig). The node's network is
this machine's, so the simulated pods' local route reaches the proxy and the hub pods
as it reaches any process here.

A round's settings go in as one more hub.extraConfig snippet (`helm upgrade`: the hub
pod restarts with them; the proxy, its routes and the database stay). The CPU a pod
used is read from its cgroup on the node (cpuacct.usage; the kubelet's cgroupfs tree
under node.sh's root), the hub's waits for a CPU from its main process's schedstat."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster import helmrelease
from tests.cluster.kube import Kubectl

from . import say
from .hubproc import Setting, cpu_wait_seconds

CGROUP_ROOTS = ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct")  # v1 (these machines)
NODE_CGROUP = "dsbuild-test-node"  # node.sh's NODE_CGROUP_ROOT
FULL = f"{helmrelease.RELEASE}-dsbuild"  # the release's objects' name prefix


def pod_cgroup(uid: str) -> Path | None:
    """The pod's cgroup in the cpuacct hierarchy (the kubelet's cgroupfs layout), if found."""
    for root in CGROUP_ROOTS:
        for pattern in (f"{root}/{NODE_CGROUP}/kubepods/*/pod{uid}", f"{root}/{NODE_CGROUP}/kubepods/pod{uid}"):
            found = glob.glob(pattern)
            if found:
                return Path(found[0])
    return None


def cgroup_cpu_seconds(cgroup: Path | None) -> float:
    """CPU seconds every process of the cgroup has used (cpuacct.usage, nanoseconds)."""
    try:
        return int((cgroup / "cpuacct.usage").read_text()) / 1e9 if cgroup else float("nan")
    except (OSError, ValueError):
        return float("nan")


def hub_pid(cgroup: Path | None) -> int:
    """The JupyterHub process among the hub pod's processes (not its idle culler), or 0."""
    if cgroup is None:
        return 0
    pids: list[int] = []
    for procs in glob.glob(f"{cgroup}/*/cgroup.procs"):  # one cgroup per container
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in Path(procs).read_text().split()]
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(a.endswith(b"jupyterhub") for a in argv[:2]) and b"--config" in argv:
                return pid
    return 0


@dataclass
class Release:
    """The installed release, as the run drives it."""

    kubectl: Kubectl
    helm: object  # tests.helm.chart.Helm
    namespace: str
    values: dict  # everything but the round's settings
    stub_port: int = 0
    installed: bool = False
    cgroups: dict[str, Path | None] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.values['proxy']['port']}/"

    @property
    def password(self) -> str:
        return helmrelease.PASSWORD

    def service_token(self) -> str:
        secret = self.kubectl.get("secret", FULL, namespace=self.namespace)
        return base64.b64decode(secret["data"]["service_token"]).decode()

    def apply(self, settings: list[Setting]) -> None:
        """`helm install`, or `upgrade` with the round's settings; then the hub answers
        through the proxy, and its pods' cgroups are known."""
        code = [f"c.KubeLaunchSpawner.port = {self.stub_port}"] + [s.line() for s in settings]
        values = {**self.values, "hub": {**self.values["hub"], "extraConfig": {"bench": "\n".join(code)}}}
        helmrelease.install(self.helm, self.namespace, values, verb="upgrade" if self.installed else "install")
        self.installed = True
        hub = helmrelease.Hub(self.url)
        self.kubectl.wait_for(lambda: self._pods_settled() and hub.answers(), "the release's hub", timeout=300,
                              interval=1)
        self.cgroups = {name: pod_cgroup(self._pod(name)["metadata"]["uid"]) for name in ("hub", "proxy")}

    def cpu(self) -> dict[str, float]:
        used = {name: cgroup_cpu_seconds(cgroup) for name, cgroup in self.cgroups.items()}
        pid = self.hub_pid()
        used["hub wait"] = cpu_wait_seconds(pid) if pid else float("nan")
        return used

    def hub_pid(self) -> int:
        """The hub's process on this machine (what py-spy attaches to), or 0."""
        return hub_pid(self.cgroups.get("hub"))

    def _pods(self, component: str) -> list[dict]:
        return self.kubectl.get("pod", namespace=self.namespace,
                                selector=f"app.kubernetes.io/component={component}") or []

    def _pod(self, component: str) -> dict:
        pods = self._pods(component)
        assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
        return pods[0]

    def _pods_settled(self) -> bool:
        """One running pod each (an upgrade's old hub pod gone)."""
        return all(len(ps) == 1 and ps[0]["status"].get("phase") == "Running" and
                   not ps[0]["metadata"].get("deletionTimestamp")
                   for ps in (self._pods("hub"), self._pods("proxy")))


def release_round(release: Release):
    """The run's round factory (hubrun.run_through_hub): the release with the round's settings."""

    @contextlib.asynccontextmanager
    async def opened(k: int, settings: list[Setting], stub_port: int):
        release.stub_port = stub_port
        t0 = time.monotonic()
        await asyncio.to_thread(release.apply, settings)
        say(f"round {k}: the release's hub is up with its settings after {time.monotonic() - t0:.0f} s")
        yield release

    return opened


def install_release(kubectl: Kubectl, namespace: str, node_selector: dict, catalog: dict, run_dir: Path) -> Release:
    """The release's tools (helm, the hub's image in the node's registry) and values; it is
    installed by the first round. Needs the cluster's real node."""
    from dsbuild.builder.run import free_port

    from tests.cluster import realnode
    from tests.helm.chart import Helm, build_helm

    env = realnode.cluster_env(run_dir)
    if "DSBUILD_CLUSTER_NODE" not in env:
        raise RuntimeError(f"the test cluster has no real node: {env.get('DSBUILD_CLUSTER_NO_NODE') or 'none'}")
    node = realnode.RealNode(env["DSBUILD_CLUSTER_NODE"], env["DSBUILD_CLUSTER_REGISTRY"])
    say("building (or reusing) helm and the hub's image")
    helm = Helm(build_helm(), run_dir.parent / "scale-hub" / "helm-home", kubectl.kubeconfig)
    image = helmrelease.build_hub_image(node.registry)
    ports = {"hub": free_port(), "proxy": free_port(), "api": free_port()}
    values = {**helmrelease.hub_values(kubectl, node, image, ports),
              "singleuser": {"nodeSelector": node_selector, "startTimeout": 300}, "catalog": catalog}
    return Release(kubectl, helm, namespace, values)


def uninstall_release(release: Release, bench_volumes: str) -> None:
    """`helm uninstall`, then what it keeps by design (the hub's database claim) and the
    real node's volume that held it, made free again. The run's own volumes (selector
    `bench_volumes`) are deleted first, not recycled one by one."""
    if release.installed:
        release.helm("uninstall", helmrelease.RELEASE, "--namespace", release.namespace, "--wait", "--timeout", "5m",
                     check=False, timeout=400)
    release.kubectl("delete", "pv", "-l", bench_volumes, "--wait=false", check=False)
    # 1000 claims take minutes: the client waits longer than kubectl's own --timeout.
    release.kubectl("delete", "pods,pvc", "--all", "-n", release.namespace, "--wait=true", "--timeout=600s",
                    check=False, timeout=660)
    release.kubectl.recycle_volumes(release.namespace)
