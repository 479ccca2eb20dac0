"""What a user asked for: form data or JSON -> `UserOptions`.

The same keys arrive two ways. The spawn form posts them as HTML form fields
(JupyterHub hands those over as lists of strings) and scripts send them as a
JSON object through JupyterHub's REST API (``user_options``). Both end up here
and are only type-checked: whether the catalog offers the choice, and whether
the user's groups allow it, is decided by `resolve`.

JSON keys (all optional; a missing key means the catalog default):

    environment    name of a catalog environment
    cpu            CPU limit: 2, 0.5, "2" or "500m"
    memory         memory limit: "4Gi"
    gpu_type       name of a catalog GPU type
    gpus           number of GPUs (0 = none; 1 when only gpu_type is given)
    storage        size of the home volume: "10Gi"
    storage_class  storage class of the home volume
    git_url        a git repository to build instead of an environment
    git_ref        branch, tag or commit of git_url (default "HEAD")

The launch service adds its own keys (`LAUNCH_KEYS`: image, repo, ref; see
launch/spawning.py); they are not catalog choices, and counting what a user's
servers hold ignores them (`strip_launch_keys`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import OptionsError
from .quantities import Cpu, Memory

KEYS = (
    "environment", "cpu", "memory", "gpu_type", "gpus",
    "storage", "storage_class", "git_url", "git_ref",
)
MAX_TEXT = 512


@dataclass(frozen=True)
class UserOptions:
    environment: str | None = None
    cpu: Cpu | None = None
    memory: Memory | None = None
    gpu_type: str | None = None
    gpus: int | None = None
    storage: Memory | None = None
    storage_class: str | None = None
    git_url: str | None = None
    git_ref: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form (what JupyterHub stores as ``user_options``)."""
        out: dict[str, Any] = {}
        for key in KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            out[key] = value.k8s() if isinstance(value, (Cpu, Memory)) else value
        return out


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionsError(f"{key} must be a string, got {type(value).__name__} {value!r}")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise OptionsError(f"{key} is longer than {MAX_TEXT} characters")
    return value or None


def _quantity(key: str, value: Any, kind: type[Cpu] | type[Memory]) -> Any:
    if value is None or value == "":
        return None
    try:
        return kind.parse(value)
    except ValueError as e:
        raise OptionsError(f"{key}: {e}") from None


def _count(key: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"{key} must be a whole number, got {value!r}")
    if value < 0:
        raise OptionsError(f"{key} must not be negative, got {value}")
    if value > 1024:
        raise OptionsError(f"{key}={value} is far more than any node has")
    return value


LAUNCH_KEYS = ("image", "repo", "ref")


def strip_launch_keys(user_options: Any) -> Any:
    """user_options without the launch service's keys (anything else unchanged)."""
    if isinstance(user_options, Mapping):
        return {k: v for k, v in user_options.items() if k not in LAUNCH_KEYS}
    return user_options


def parse_user_options(data: Any) -> UserOptions:
    """Check the JSON form of a request; unknown keys are refused, not ignored."""
    if data is None:
        return UserOptions()
    if not isinstance(data, Mapping):
        raise OptionsError(f"user options must be a JSON object, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise OptionsError(f"unknown option {', '.join(map(repr, unknown))}; known options: {', '.join(KEYS)}")
    return UserOptions(
        environment=_text("environment", data.get("environment")),
        cpu=_quantity("cpu", data.get("cpu"), Cpu),
        memory=_quantity("memory", data.get("memory"), Memory),
        gpu_type=_text("gpu_type", data.get("gpu_type")),
        gpus=_count("gpus", data.get("gpus")),
        storage=_quantity("storage", data.get("storage"), Memory),
        storage_class=_text("storage_class", data.get("storage_class")),
        git_url=_text("git_url", data.get("git_url")),
        git_ref=_text("git_ref", data.get("git_ref")),
    )


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, Any]:
    """Turn posted form fields into the JSON form of `UserOptions`.

    Only converts types: one value per field, empty fields dropped, and the
    "no GPU" choice (an empty ``gpu_type``) turned into ``gpus: 0``. Fields the
    form does not have (such as ``_xsrf``) are ignored. Raises `OptionsError`
    for a value of the wrong type.
    """
    fields: dict[str, Any] = {}
    for key in KEYS:
        values = formdata.get(key) or []
        if len(values) > 1:
            raise OptionsError(f"{key} was sent {len(values)} times; choose one")
        if values and isinstance(values[0], str) and values[0].strip():
            fields[key] = values[0].strip()
    if "gpu_type" not in fields:
        fields["gpus"] = "0"
    return parse_user_options(fields).to_json()
