"""`ResourceRequest` -> the pod and PVC manifests, as plain dicts.

These are the single source of truth for what dsbuild sends to Kubernetes.
The spawner passes KubeSpawner's own pod as `base` so that everything a hub
admin configured on KubeSpawner (environment for JupyterHub, labels the hub
watches, the command, image pull secrets, init containers, affinity...) is
kept; `pod_manifest` then sets, and always wins on, what the catalog decides:

- the notebook container's image, CPU/memory/GPU requests and limits;
- non-root security (uid/gid from the catalog, no privilege escalation, all
  capabilities dropped, RuntimeDefault seccomp);
- the home volume (the user's PVC) and the read-only shared data volumes,
  replacing any base volume with the same name or mount path;
- the GPU type's node selector and the GPU toleration.

The dicts use Kubernetes' JSON field names and validate against its OpenAPI
schema (tests/spawner checks this with kubernetes-validate).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .resolve import ResourceRequest

NOTEBOOK_CONTAINER = "notebook"  # the container name KubeSpawner gives the server
HOME_VOLUME = "home"
NOTEBOOK_PORT = 8888
ANNOTATION = "dsbuild.io/"
# Annotation KubeSpawner adds for the long-deprecated beta storage-class field.
_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def _resources(request: ResourceRequest) -> dict[str, dict[str, str]]:
    requests = {"cpu": request.cpu.guarantee.k8s(), "memory": request.memory.guarantee.k8s()}
    limits = {"cpu": request.cpu.limit.k8s(), "memory": request.memory.limit.k8s()}
    if request.gpu:
        # Extended resources: request must equal limit.
        requests[request.gpu.resource] = limits[request.gpu.resource] = str(request.gpu.count)
    return {"requests": requests, "limits": limits}


def _env(request: ResourceRequest) -> list[dict[str, str]]:
    """Variables the image and Jupyter extensions read (JupyterHub's names)."""
    return [
        {"name": "JUPYTER_IMAGE", "value": request.image},
        {"name": "JUPYTER_IMAGE_SPEC", "value": request.image},
        {"name": "CPU_GUARANTEE", "value": str(request.cpu.guarantee.cores)},
        {"name": "CPU_LIMIT", "value": str(request.cpu.limit.cores)},
        {"name": "MEM_GUARANTEE", "value": str(request.memory.guarantee.bytes)},
        {"name": "MEM_LIMIT", "value": str(request.memory.limit.bytes)},
        {"name": "DSBUILD_ENVIRONMENT", "value": request.environment},
    ]


def _volumes(request: ResourceRequest, pvc_name: str) -> tuple[list[dict], list[dict]]:
    volumes = [{"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": pvc_name}}]
    mounts = [{"name": HOME_VOLUME, "mountPath": request.storage.mount_path}]
    for data in request.data_volumes:
        name = f"data-{data.name}"
        if data.pvc:
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": data.pvc, "readOnly": True}})
        else:
            volumes.append({"name": name, "nfs": {"server": data.nfs_server, "path": data.nfs_path, "readOnly": True}})
        mounts.append({"name": name, "mountPath": data.mount_path, "readOnly": True})
    return volumes, mounts


def _container_security(request: ResourceRequest) -> dict[str, Any]:
    return {
        "runAsUser": request.security.uid,
        "runAsGroup": request.security.gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _replace_by_name(base: list[dict], ours: list[dict]) -> list[dict]:
    names = {item["name"] for item in ours}
    return [item for item in base if item.get("name") not in names] + ours


def _all_containers(spec: dict) -> list[dict]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _notebook_container(spec: dict) -> dict:
    for container in spec.get("containers") or []:
        if container.get("name") == NOTEBOOK_CONTAINER:
            return container
    raise ValueError(f"base pod has no container named {NOTEBOOK_CONTAINER!r}")


def pod_manifest(request: ResourceRequest, *, pvc_name: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """The pod for `request`: `base` (KubeSpawner's pod, or `minimal_pod`) with
    the catalog's decisions applied. `base` is not modified."""
    pod = copy.deepcopy(dict(base))
    metadata = pod.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {}) or {}
    annotations[ANNOTATION + "environment"] = request.environment
    if request.git:
        annotations[ANNOTATION + "git-url"] = request.git.url
        annotations[ANNOTATION + "git-ref"] = request.git.ref or "HEAD"
    metadata["annotations"] = annotations

    spec = pod.setdefault("spec", {})
    container = _notebook_container(spec)
    container["image"] = request.image
    container["resources"] = _resources(request)
    container["env"] = _replace_by_name(container.get("env") or [], _env(request))
    container["securityContext"] = {**(container.get("securityContext") or {}), **_container_security(request)}

    volumes, mounts = _volumes(request, pvc_name)
    paths = {m["mountPath"] for m in mounts}
    base_mounts = container.get("volumeMounts") or []
    kept_mounts = [m for m in base_mounts if m.get("mountPath") not in paths]
    container["volumeMounts"] = _replace_by_name(kept_mounts, mounts)
    # Base volumes whose only mount we replaced (e.g. a home volume from
    # Zero-to-JupyterHub's storage settings) go; ones other containers mount stay.
    dropped = {m.get("name") for m in base_mounts if m not in kept_mounts}
    in_use = {m.get("name") for c in _all_containers(spec) for m in c.get("volumeMounts") or []}
    base_volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in dropped - in_use]
    spec["volumes"] = _replace_by_name(base_volumes, volumes)

    spec["securityContext"] = {**(spec.get("securityContext") or {}), "fsGroup": request.security.fs_gid}
    if request.gpu:
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **dict(request.gpu.type.node_selector)}
        toleration = {"key": request.gpu.resource, "operator": "Exists", "effect": "NoSchedule"}
        tolerations = list(spec.get("tolerations") or [])
        if toleration not in tolerations:
            tolerations.append(toleration)
        spec["tolerations"] = tolerations
    return pod


def pvc_manifest(request: ResourceRequest, *, pvc_name: str, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user's home volume claim: the chosen size, class and access mode.

    Labels and annotations come from `base` (KubeSpawner's PVC) when given;
    its spec is replaced.
    """
    base_meta = (base or {}).get("metadata") or {}
    annotations = {k: v for k, v in (base_meta.get("annotations") or {}).items() if k != _BETA_STORAGE_CLASS}
    spec: dict[str, Any] = {
        "accessModes": [request.storage.access_mode],
        "resources": {"requests": {"storage": request.storage.size.k8s()}},
    }
    if request.storage.storage_class:
        spec["storageClassName"] = request.storage.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": pvc_name,
            "labels": dict(base_meta.get("labels") or {}),
            "annotations": annotations,
        },
        "spec": spec,
    }
