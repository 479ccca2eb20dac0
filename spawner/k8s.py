"""Plain manifest dicts <-> kubernetes_asyncio models, both ways exact.

KubeSpawner hands its manifests around as kubernetes_asyncio models (it reads
``pod.metadata.name``; admins' ``modify_pod_hook`` functions expect models).
dsbuild builds plain dicts. These two functions convert between them using
the models' own ``openapi_types`` / ``attribute_map`` tables. Unlike the
client's response deserializer, `to_model` refuses a key the model does not
have, so nothing in a manifest can be dropped silently on the way out.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import kubernetes_asyncio.client.models as models

_PRIMITIVES = {"str": str, "int": int, "float": float, "bool": bool}


def to_model(data: Any, type_name: str) -> Any:
    """Build the model named `type_name` (e.g. "V1Pod") from camelCase data."""
    if data is None:
        return None
    if type_name.startswith("list["):
        inner = type_name[5:-1]
        return [to_model(item, inner) for item in data]
    if type_name.startswith("dict("):
        inner = re.match(r"dict\(([^,]*), (.*)\)", type_name).group(2)
        return {key: to_model(value, inner) for key, value in data.items()}
    if type_name in _PRIMITIVES:
        if not isinstance(data, _PRIMITIVES[type_name]) and not (type_name == "float" and isinstance(data, int)):
            raise ValueError(f"expected {type_name}, got {data!r}")
        return data
    if type_name in ("object", "datetime", "date"):
        return data
    cls = getattr(models, type_name)
    if not isinstance(data, dict):
        raise ValueError(f"{type_name}: expected a mapping, got {type(data).__name__}")
    by_key = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    unknown = sorted(set(data) - set(by_key))
    if unknown:
        raise ValueError(f"{type_name} has no field {', '.join(unknown)}")
    return cls(**{by_key[k]: to_model(v, cls.openapi_types[by_key[k]]) for k, v in data.items()})


def to_plain(obj: Any) -> Any:
    """The camelCase dict of a model (None fields dropped), as sent on the wire."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [to_plain(item) for item in obj]
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {key: to_plain(value) for key, value in obj.items()}
    return {
        obj.attribute_map[attr]: to_plain(getattr(obj, attr))
        for attr in obj.openapi_types
        if getattr(obj, attr) is not None
    }
