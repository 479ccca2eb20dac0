"""The real test cluster for the `cluster` tests: started once per session with
tests/cluster/start.sh (which builds the binaries if the cache lacks them) and
stopped with stop.sh at the end, unless it was already running.

The spawner talks to it as a JupyterHub hub would: with a service account
token whose ClusterRole is bound in each test namespace (what a hub's RBAC
allows, nothing more). Checks and setup use kubectl with the admin kubeconfig,
so what the tests see is the cluster's own view, not the spawner's.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from . import nodehub, objects, realnode
from .kube import Kubectl
from .nodehub import HUB_NAMESPACE

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_DIR = Path(os.environ.get("DSBUILD_CLUSTER_DIR", ROOT / ".run" / "cluster"))
TEST_LABEL = "dsbuild.io/test-namespace"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"the test cluster could not be started (CI=true, so this fails): {reason}", pytrace=False)
    pytest.skip(f"the test cluster could not be started: {reason}")


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _start() -> tuple[int, str, str]:
    """Run start.sh, passing its progress (stderr) through; return its exit
    code, its output (the kubeconfig path) and its last line of progress."""
    process = subprocess.Popen([str(HERE / "start.sh")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = ""
    for line in process.stderr:
        sys.stderr.write(line)
        last = line.strip() or last
    stdout = process.stdout.read()
    return process.wait(), stdout, re.sub(r"\x1b\[[0-9;]*m", "", last)


@pytest.fixture(scope="session")
def cluster(pytestconfig) -> Kubectl:
    """Start the cluster (building its binaries on the first run), stop it after."""
    was_running = _alive(RUN_DIR / "pids" / "kube-apiserver.pid")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # show build and start progress live
        print("\n[cluster] starting the test cluster (the first run on a machine builds it: ~10 min)", flush=True)
        try:
            code, stdout, last = _start()
        except OSError as e:
            _unavailable(f"tests/cluster/start.sh: {e}")
    if code != 0:
        subprocess.run([str(HERE / "stop.sh"), "--keep-logs"], check=False)
        _unavailable(f"tests/cluster/start.sh exited {code}: {last}")
    kubeconfig = Path(stdout.strip().splitlines()[-1])
    bin_dir = Path((RUN_DIR / "bin").read_text().strip())
    kubectl = Kubectl(bin_dir / "kubectl", kubeconfig)
    yield kubectl
    if not was_running:
        subprocess.run([str(HERE / "stop.sh")], check=False)


@pytest.fixture(scope="session")
def hub_kubeconfig(cluster: Kubectl, tmp_path_factory) -> Path:
    """A kubeconfig with the hub service account's token, and the role it binds."""
    path = nodehub.write_hub_kubeconfig(cluster, tmp_path_factory.mktemp("hub") / "kubeconfig")
    yield path
    cluster("wait", "--for=delete", "namespace", "-l", TEST_LABEL, "--timeout=120s", check=False)
    nodehub.remove_hub_account(cluster)


@pytest.fixture(scope="session")
def loop(hub_kubeconfig):
    """One event loop for all cluster tests (KubeSpawner's reflectors and API
    client live in it), with KubeSpawner's client pointed at the hub's kubeconfig."""
    import kubernetes_asyncio.config.kube_config as kube_config
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    mp = pytest.MonkeyPatch()
    mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(hub_kubeconfig))
    mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    load_config.cache_clear()
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(KubeSpawner._stop_all_reflectors())
    pending = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
    for task in pending:
        task.cancel()
    event_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    event_loop.close()
    load_config.cache_clear()  # later tests load their own (fake) kube config
    mp.undo()


@pytest.fixture
def run(loop):
    def run(coro, timeout: float = 180):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    return run


@pytest.fixture
def namespace(cluster: Kubectl, hub_kubeconfig) -> str:
    """A fresh namespace the hub may spawn in, holding the `shared-datasets`
    claim the example catalog mounts. Deleted afterwards, with the volumes its
    claims bound, which go back to the pool as new, unbound volumes."""
    name = f"dsbuild-t-{uuid.uuid4().hex[:8]}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        TEST_LABEL: "true",
        "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"}}})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "hub", "namespace": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "dsbuild-test-hub"},
                   "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": HUB_NAMESPACE}]})
    datasets_pv = f"datasets-{name}"
    cluster.apply(objects.persistent_volume(datasets_pv, "100Gi", pool="datasets",
                                            access_mode="ReadOnlyMany", storage_class=""))
    cluster.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "shared-datasets", "namespace": name},
                   "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": datasets_pv,
                            "resources": {"requests": {"storage": "100Gi"}}}})
    cluster.wait_for(lambda: cluster.get("serviceaccount", "default", namespace=name), "default service account")
    yield name
    # Claims first (their pods are gone once the spawner stopped them), so that
    # the volumes are free to recycle now; the namespace itself goes in the
    # background and hub_kubeconfig's teardown waits for all of them at once.
    cluster("delete", "pods,pvc", "--all", "-n", name, "--wait=true", "--timeout=60s", check=False)
    cluster.recycle_volumes(name)
    cluster("delete", "pv", datasets_pv, "--wait=false", check=False)
    cluster("delete", "namespace", name, "--wait=false", check=False)


# -- the real node (node.sh) -------------------------------------------------


@pytest.fixture(scope="session")
def real_node(cluster: Kubectl) -> realnode.RealNode:
    """The cluster's real node and its registry; skipped (failed in CI) without one."""
    env = realnode.cluster_env(RUN_DIR)
    if "DSBUILD_CLUSTER_NODE" not in env:
        why = env.get("DSBUILD_CLUSTER_NO_NODE") or "it was started with --no-node"
        _unavailable(f"the test cluster has no real node: {why}")
    node = realnode.RealNode(env["DSBUILD_CLUSTER_NODE"], env["DSBUILD_CLUSTER_REGISTRY"])
    cluster("wait", "--for=condition=Ready", f"node/{node.name}", "--timeout=60s")
    return node


@pytest.fixture(scope="session")
def node_image(real_node: realnode.RealNode, tmp_path_factory) -> str:
    """A small repository built and pushed to the node's registry the production
    way; the engine's copy of the pushed tag is removed at the end."""
    repo = realnode.make_repo(tmp_path_factory.mktemp("node-repo") / "repo")
    image_name = f"dsbuild-node-test-{uuid.uuid4().hex[:6]}"
    image = realnode.build_and_push(repo, real_node.registry, image_name)
    yield image
    subprocess.run(["docker", "image", "rm", image], capture_output=True, check=False)


@pytest.fixture
def node_namespace(cluster: Kubectl, namespace: str, real_node: realnode.RealNode, tmp_path) -> str:
    """`namespace` with the `real-datasets` claim bound to a read-only local
    volume on the real node that holds one file."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / realnode.DATA_FILE).write_text("shared data\n")
    folder.chmod(0o755)
    pv_name = f"real-datasets-{namespace}"
    cluster.apply(realnode.data_volume(pv_name, folder, real_node.name))
    cluster.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": realnode.DATA_CLAIM, "namespace": namespace},
                   "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": pv_name,
                            "resources": {"requests": {"storage": "1Gi"}}}})
    yield namespace
    cluster("delete", "pods,pvc", "--all", "-n", namespace, "--wait=true", "--timeout=90s", check=False)
    cluster("delete", "pv", pv_name, "--wait=false", check=False)
