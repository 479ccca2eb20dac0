"""Hub configuration generated from a catalog (`dsbuild hub config`).

The catalog is checked with `parse_catalog`, then written back out in its
canonical form (`catalog_data`) so that what lands in the generated config
is exactly what was validated. Values reach the templates only as a Python
literal made by `python_literal` from plain str/int/float/bool/list/dict data, which
is valid Python for any content; the YAML template holds that Python inside
a literal block scalar, which needs no escaping.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .catalog import Catalog, DataVolume, GroupLimits, Limits
from .network_policy import network_policy_manifest
from .templating import render_text

FORMATS = ("jupyterhub", "z2jh")
_TEMPLATES = {"jupyterhub": "jupyterhub_config.py.j2", "z2jh": "z2jh-values.yaml.j2"}


def _limits(limits: Limits) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if limits.cpu is not None:
        out["cpu"] = limits.cpu.k8s()
    if limits.memory is not None:
        out["memory"] = limits.memory.k8s()
    if limits.gpus is not None:
        out["gpus"] = limits.gpus
    if limits.storage is not None:
        out["storage"] = limits.storage.k8s()
    return out


def _group_limits(group: GroupLimits) -> dict[str, Any]:
    return {"per_server": _limits(group.per_server), "per_user": _limits(group.per_user)}


def _data_volume(volume: DataVolume) -> dict[str, Any]:
    if volume.pvc:
        return {"mount_path": volume.mount_path, "pvc": volume.pvc}
    return {"mount_path": volume.mount_path, "nfs": {"server": volume.nfs_server, "path": volume.nfs_path}}


def catalog_data(catalog: Catalog) -> dict[str, Any]:
    """The canonical plain-data form of a catalog; `parse_catalog` reads it back equal."""
    data: dict[str, Any] = {
        "environments": {
            e.name: {"image": e.image, "display_name": e.display_name, "description": e.description}
            for e in catalog.environments
        },
        "cpu": [{"limit": c.limit.k8s(), "guarantee": c.guarantee.k8s()} for c in catalog.cpu],
        "memory": [{"limit": m.limit.k8s(), "guarantee": m.guarantee.k8s()} for m in catalog.memory],
        "storage": {
            "mount_path": catalog.storage.mount_path,
            "access_mode": catalog.storage.access_mode,
            "sizes": [s.k8s() for s in catalog.storage.sizes],
            "classes": list(catalog.storage.classes),
        },
    }
    if catalog.gpu:
        data["gpu"] = {
            "resource": catalog.gpu.resource,
            "counts": list(catalog.gpu.counts),
            "types": {t.name: {"display_name": t.display_name, "node_selector": dict(t.node_selector)}
                      for t in catalog.gpu.types},
        }
    if catalog.data_volumes:
        data["data_volumes"] = {v.name: _data_volume(v) for v in catalog.data_volumes}
    if catalog.git_builds:
        data["git_builds"] = {
            "allowed_prefixes": list(catalog.git_builds.allowed_prefixes),
            "image_template": catalog.git_builds.image_template,
        }
    data["limits"] = {
        "groups": {name: _group_limits(g) for name, g in catalog.group_limits},
        "default": _group_limits(catalog.default_limits),
    }
    data["security"] = {"uid": catalog.security.uid, "gid": catalog.security.gid, "fs_gid": catalog.security.fs_gid}
    defaults = catalog.defaults
    data["defaults"] = {
        "environment": defaults.environment,
        "cpu": defaults.cpu.k8s(),
        "memory": defaults.memory.k8s(),
        "storage": defaults.storage.k8s(),
    }
    if defaults.storage_class is not None:
        data["defaults"]["storage_class"] = defaults.storage_class
    return data


def python_literal(data: Any, indent: int = 0) -> str:
    """A Python expression for plain data (dict/list/str/int/float/bool/None),
    one entry per line. Scalars are written with repr(), which is a valid
    Python literal for any string."""
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(data, dict):
        if not data:
            return "{}"
        items = [f"{inner}{python_literal(k)}: {python_literal(v, indent + 4)}," for k, v in data.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(data, list):
        if not data:
            return "[]"
        if all(isinstance(item, (str, int, float)) for item in data):
            return "[" + ", ".join(python_literal(item) for item in data) + "]"
        items = [f"{inner}{python_literal(item, indent + 4)}," for item in data]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(data, float) and not math.isfinite(data):
        raise TypeError(f"not a finite number: {data!r}")
    if data is None or isinstance(data, (str, int, float, bool)):
        return repr(data)
    raise TypeError(f"not plain data: {type(data).__name__}")


def _source_label(source: str) -> str:
    """The catalog file's name for a comment line, or a generic word if odd."""
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    return name if re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name) else "a catalog file"


def render_hub_config(catalog: Catalog, fmt: str, source: str = "catalog.yaml") -> str:
    """The jupyterhub_config.py snippet (fmt "jupyterhub") or the Zero-to-JupyterHub
    values (fmt "z2jh") that use DsbuildSpawner with `catalog`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    python_config = render_text(
        "jupyterhub_config.py.j2",
        source=_source_label(source),
        catalog_literal=python_literal(catalog_data(catalog)),
        # z2jh: the chart makes the policy (singleuser.networkPolicy), the spawner does not
        network_policy_literal=python_literal(network_policy_manifest()) if fmt == "jupyterhub" else None,
    )
    if fmt == "jupyterhub":
        return python_config
    return render_text(_TEMPLATES[fmt], source=_source_label(source), python_config=python_config)
