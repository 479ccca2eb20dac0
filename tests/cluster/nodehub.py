"""The hub on Kubernetes against the real node, as the hub tests
(test_hub_node.py) and benchmarks/node.py set it up: the hub's service account
and its kubeconfig, the `default` namespace pinned to the real node, and
`dsbuild hub up --spawner kubernetes` on this machine. Plain helpers; the
fixtures are in conftest.py and test_hub_node.py.

KubeSpawner outside a cluster spawns in the namespace `default`; it is pinned to
the real node the way an operator pins a namespace to a node pool (the
PodNodeSelector and PodTolerationRestriction admission plugins' annotations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsbuild.launch.localhub import HubError, HubOptions, hub_up

from . import objects, realnode
from .kube import Kubectl

HUB_NAMESPACE = "dsbuild-test-hub"
NAMESPACE = "default"  # where KubeSpawner outside a cluster puts the servers
NODE_IP = "10.123.0.1"  # node.sh's NODE_IP: the bridge address pods reach this machine at
# What a hub needs to spawn: the same verbs Zero to JupyterHub grants its hub.
HUB_RULES = [
    {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims"],
     "verbs": ["get", "watch", "list", "create", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
    # DsbuildSpawner.network_policy (what `dsbuild hub config` sets) puts the servers' policy in place
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "create", "update"]},
]
PIN_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": f"{objects.POOL_LABEL}={realnode.NODE_POOL}",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]),
}


def free_port() -> int:
    from dsbuild.builder.run import free_port as free
    return free()


def write_hub_kubeconfig(kubectl: Kubectl, path: Path) -> Path:
    """The hub's service account, its ClusterRole, and a kubeconfig with its token at `path`."""
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HUB_NAMESPACE}})
    kubectl.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "hub", "namespace": HUB_NAMESPACE}})
    kubectl.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "dsbuild-test-hub"}, "rules": HUB_RULES})
    token = kubectl("create", "token", "hub", "-n", HUB_NAMESPACE, "--duration=3h").strip()
    admin = json.loads(kubectl("config", "view", "--raw", "-o", "json"))
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "hub",
        "clusters": [{"name": "test", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "hub", "user": {"token": token}}],
        "contexts": [{"name": "hub", "context": {"cluster": "test", "user": "hub"}}],
    }))
    return path


def remove_hub_account(kubectl: Kubectl) -> None:
    """Undo `write_hub_kubeconfig` (its token stops working with its namespace)."""
    kubectl("delete", "namespace", HUB_NAMESPACE, "--wait=false", check=False)
    kubectl("wait", "--for=delete", "namespace", HUB_NAMESPACE, "--timeout=120s", check=False)
    kubectl("delete", "clusterrole", "dsbuild-test-hub", check=False)


def pin_to_real_node(kubectl: Kubectl, namespace: str = NAMESPACE) -> None:
    """Pods of `namespace` go to the real node only; the hub's role is bound there."""
    kubectl("annotate", "namespace", namespace, "--overwrite", *(f"{k}={v}" for k, v in PIN_ANNOTATIONS.items()))
    kubectl.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "dsbuild-test-hub", "namespace": namespace},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "dsbuild-test-hub"},
                   "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": HUB_NAMESPACE}]})


def unpin(kubectl: Kubectl, namespace: str = NAMESPACE) -> None:
    """Undo `pin_to_real_node`, after removing the servers and claims left there
    (the test cluster's `default` holds nothing else: what is left is the hub's)."""
    kubectl("delete", "pods,pvc", "--all", "-n", namespace, "--wait=true", "--timeout=90s", check=False)
    kubectl.recycle_volumes(namespace)
    kubectl("delete", "rolebinding", "dsbuild-test-hub", "-n", namespace, check=False)
    kubectl("annotate", "namespace", namespace, *(f"{k}-" for k in PIN_ANNOTATIONS), check=False)


def start_hub(tmp: Path, registry: str, hub_kubeconfig: Path, catalog_file: Path, password: str,
              **options) -> HubOptions:
    """`dsbuild hub up --spawner kubernetes` with the hub's service account, its API
    on the bridge address the pods reach; stop it with `hub_down(hub.state_dir)`."""
    hub_port = free_port()
    hub = HubOptions(state_dir=tmp / "hub", port=free_port(), proxy_api_port=free_port(), hub_port=hub_port,
                     hub_ip=NODE_IP, spawner="kubernetes", hub_connect_url=f"http://{NODE_IP}:{hub_port}",
                     launch_image_prefix=f"{registry}/", catalog_file=catalog_file, cull_timeout=3600, **options)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(hub_kubeconfig))  # the hub's service account, as in a cluster
        hub_up(hub, say=print, password=password)
    return hub


__all__ = ["HubError", "free_port", "pin_to_real_node", "remove_hub_account", "start_hub", "unpin", "write_hub_kubeconfig"]
