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
- the `home-init` init container that fills an empty home volume from the
  image's home (below), after any init containers of the base;
- the GPU type's node selector and the GPU toleration.

The home volume is mounted where the image keeps the repository (the user's
home, /home/jovyan), so on its own it would hide the repository's notebooks.
`home-init` runs the notebook's image, as the user, with the volume mounted
beside the image's home: on the first start (no marker file in the volume) it
copies the image's home into the volume, never replacing a file that is
already there, and writes the marker. Later starts copy nothing, so the user's
edits and deletions stay as the user left them. docs/spawner.md has the design.

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
HOME_INIT_CONTAINER = "home-init"
HOME_INIT_MOUNT = "/dsbuild-home-volume"  # where home-init sees the volume
HOME_MARKER = ".dsbuild-home-initialized"
# Arguments, never interpolated: $1 the image's home, $2 the volume, $3 the marker's name.
# Each entry of the image's home is copied unless the volume has one of that name
# (the folder itself is not: the user may not set attributes on the volume's root).
_HOME_INIT_SCRIPT = (
    'set -eu\n'
    'if [ -e "$2/$3" ]; then echo "home volume already set up: nothing copied"; exit 0; fi\n'
    'if [ -d "$1" ]; then find "$1" -mindepth 1 -maxdepth 1 -exec sh -c \''
    'for f; do n="${f##*/}"; [ -e "$0/$n" ] || [ -L "$0/$n" ] || cp -a -- "$f" "$0/" || exit 1; done'
    '\' "$2" {} +; fi\n'
    'date -u +%Y-%m-%dT%H:%M:%SZ > "$2/$3"\n'
    'echo "home volume set up from the image\'s $1"\n'
)
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


def _home_init_container(request: ResourceRequest, notebook: Mapping[str, Any]) -> dict[str, Any]:
    """Fills an empty home volume from the image's home on the first start (see above)."""
    container: dict[str, Any] = {
        "name": HOME_INIT_CONTAINER,
        "image": request.image,
        "command": ["sh", "-c", _HOME_INIT_SCRIPT, HOME_INIT_CONTAINER,
                    request.storage.mount_path, HOME_INIT_MOUNT, HOME_MARKER],
        "resources": _resources(request),
        "securityContext": _container_security(request),
        "volumeMounts": [{"name": HOME_VOLUME, "mountPath": HOME_INIT_MOUNT}],
    }
    if notebook.get("imagePullPolicy"):
        container["imagePullPolicy"] = notebook["imagePullPolicy"]
    return container


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

    spec["initContainers"] = _replace_by_name(spec.get("initContainers") or [],
                                              [_home_init_container(request, container)])
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
