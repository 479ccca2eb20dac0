"""What the launch spawners share: the launch keys in `user_options`, and what of a
resolved request a local Docker engine can honour. Pure. (What every spawner shares,
the catalog and the user's accounting, is spawner/mixin.py.)

The launch service starts servers with user_options such as

    {"image": "dsbuild-sketches:0123456789ab", "repo": "https://host/org/sketches", "ref": "<commit>",
     "cpu": 1, "memory": "2Gi"}

`image`, `repo` and `ref` are the launch keys: the image the service built, and where it
came from (the service counts running launches per repository by `repo`). The other
keys are the catalog's (docs/spawner.md) and go through `resolve()` like any request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsbuild.builder.names import is_ref
from dsbuild.spawner.errors import ChoiceError, OptionsError
from dsbuild.spawner.names import check_image
from dsbuild.spawner.options import LAUNCH_KEYS
from dsbuild.spawner.resolve import ResourceRequest

# Anonymous launches' temporary users are named with this prefix: the launch service makes
# them (LaunchConfig.user_prefix) and the Kubernetes launch spawner deletes their volumes
# with them (KubeLaunchSpawner.temporary_user_prefix). Both default to it.
TEMPORARY_USER_PREFIX = "binder-"


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
    if ref and not is_ref(ref):
        raise OptionsError(f"ref {ref!r} is not a branch, tag or commit name")
    return LaunchImage(image, given.get("repo", ""), ref), rest


def local_resources(request: ResourceRequest) -> LocalResources:
    """CPU and memory limits for `docker run`; GPUs are refused. Storage and data volumes
    are Kubernetes volumes: a local container gets neither, and the notes say so."""
    if request.gpu is not None:
        raise ChoiceError("GPUs are not available to servers on the local Docker engine; leave gpu_type and gpus out")
    notes = [f"the home volume is not held to {request.storage.size} on local Docker (no volume quotas)"]
    notes += [f"data volume {v.name} ({v.mount_path}) is not mounted on local Docker" for v in request.data_volumes]
    return LocalResources(request.cpu.limit.cores, request.memory.limit.bytes, tuple(notes))
