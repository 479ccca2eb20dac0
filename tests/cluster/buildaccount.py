"""The launch service's account in a build namespace, with exactly the Role that
launch/build_daemon.py's RBAC_RULES names, and a kubeconfig with its token: the
build tests talk to the cluster as the service would (the namespace's deletion
removes the account)."""

from __future__ import annotations

import json
from pathlib import Path

from dsbuild.launch.build_daemon import RBAC_RULES

from .kube import Kubectl

ACCOUNT = "dsbuild-serve"


def write_service_kubeconfig(kubectl: Kubectl, namespace: str, path: Path) -> Path:
    kubectl.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT, "namespace": namespace}})
    kubectl.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": ACCOUNT, "namespace": namespace}, "rules": list(RBAC_RULES)})
    kubectl.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": ACCOUNT, "namespace": namespace},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT},
                   "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}]})
    token = kubectl("create", "token", ACCOUNT, "-n", namespace, "--duration=3h").strip()
    admin = json.loads(kubectl("config", "view", "--raw", "-o", "json"))
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": ACCOUNT,
        "clusters": [{"name": "test", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": ACCOUNT, "context": {"cluster": "test", "user": ACCOUNT}}],
    }))
    return path
