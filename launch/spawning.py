"""What the launch spawners share: the launch keys in `user_options`, and what of a
resolved request a local Docker engine can honour. Pure, apart from `hub_user_of`,
which reads JupyterHub's user object.

The launch service starts servers with user_options such as

    {"image": "dsbuild-sketches:0123456789ab", "repo": "https://host/org/sketches", "ref": "<commit>",
     "cpu": 1, "memory": "2Gi"}

`image`, `repo` and `ref` are the launch keys: the image the service built, and where it
came from (the service counts running launches per repository by `repo`). The other
keys are the catalog's (docs/spawner.md) and go through `resolve()` like any request."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dsbuild.spawner.catalog import Catalog
from dsbuild.spawner.errors import ChoiceError, OptionsError
from dsbuild.spawner.names import check_image
from dsbuild.spawner.resolve import HubUser, ResourceRequest, Usage, held_usage

LAUNCH_KEYS = ("image", "repo", "ref")
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/@+-]{0,254}$")


@dataclass(frozen=True)
class LaunchImage:
    image: str
    repo: str
    ref: str


@dataclass(frozen=True)
class LocalResources:
    """A resolved request as `docker run` limits."""

    cpu: float  # cores (--cpus)
    memory: int  # bytes (--memory)
    notes: tuple[str, ...]  # what of the request a local engine does not do


def split_launch_options(user_options: Any) -> tuple[LaunchImage | None, dict]:
    """(the launch keys, the catalog keys) of a user_options object."""
    if user_options is None:
        return None, {}
    if not isinstance(user_options, Mapping):
        raise OptionsError(f"user options must be a JSON object, got {type(user_options).__name__}")
    rest = {k: v for k, v in user_options.items() if k not in LAUNCH_KEYS}
    given = {k: user_options[k] for k in LAUNCH_KEYS if k in user_options}
    if not given:
        return None, rest
    if "image" not in given:
        raise OptionsError("repo and ref come with image (the launch service sends all three)")
    for key, value in given.items():
        if not isinstance(value, str) or not value.strip() or len(value) > 1024:
            raise OptionsError(f"{key} must be a non-empty string")
    try:
        image = check_image(given["image"])
    except ValueError as err:
        raise OptionsError(f"image: {err}") from None
    ref = given.get("ref", "")
    if ref and not _REF.match(ref):
        raise OptionsError(f"ref {ref!r} is not a branch, tag or commit name")
    return LaunchImage(image, given.get("repo", ""), ref), rest


def strip_launch_keys(user_options: Any) -> Any:
    if isinstance(user_options, Mapping):
        return {k: v for k, v in user_options.items() if k not in LAUNCH_KEYS}
    return user_options


def local_resources(request: ResourceRequest) -> LocalResources:
    """CPU and memory limits for `docker run`; GPUs are refused. Storage and data volumes
    are Kubernetes volumes: a local container gets neither, and the notes say so."""
    if request.gpu is not None:
        raise ChoiceError("GPUs are not available to servers on the local Docker engine; leave gpu_type and gpus out")
    notes = [f"the home volume is not held to {request.storage.size} on local Docker (no volume quotas)"]
    notes += [f"data volume {v.name} ({v.mount_path}) is not mounted on local Docker" for v in request.data_volumes]
    return LocalResources(request.cpu.limit.cores, request.memory.limit.bytes, tuple(notes))


def _no_volume(orm_spawner: Any) -> bool:
    return False


def hub_user_of(user: Any, server_name: str, catalog: Catalog, has_volume: Callable[[Any], bool] = _no_volume) -> HubUser:
    """The user, their groups, and what their other servers hold: CPU and memory while
    they run, storage while `has_volume` (their home volume exists)."""
    others = Usage()
    for name, orm_spawner in (getattr(user, "orm_spawners", None) or {}).items():
        if name == server_name:
            continue
        others += held_usage(strip_launch_keys(orm_spawner.user_options), catalog,
                             running=orm_spawner.server is not None, has_volume=has_volume(orm_spawner))
    groups = frozenset(g.name for g in (getattr(user, "groups", None) or []))
    return HubUser(user.name, groups, others)
