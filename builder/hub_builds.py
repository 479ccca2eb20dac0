"""The spawners' `image_builder` hook, implemented by the builder: a hub user's `git_url`
is built (or found) with the same `build()` as `dsbuild build`, on this machine's Docker
engine, and pushed to the registry that the catalog's `git_builds.image_template` names.

    c.DsbuildSpawner.image_builder = dsbuild.builder.hub_builds.build_image

The spawner has already resolved the request (spawner/resolve.py): its `image` is the
template filled in, `REGISTRY/PATH:TAG`. The build keeps REGISTRY/PATH and tags the
commit as every dsbuild build does (names.py), so two users asking for one branch share
one image, and a pod runs exactly the commit that was built."""

from __future__ import annotations

import asyncio
from typing import Any

from .engine import DockerEngine
from .errors import BuildFailed
from .host import read_host_settings
from .registry import Registry
from .service import BuildRequest, Built, build
from .source import GitSource
from .workspace import Workspace


def split_image(image: str) -> tuple[str | None, str]:
    """`registry.example.org:5000/team/name:tag` -> ("registry.example.org:5000", "team/name").
    The first part is a registry when it has a '.' or a ':' or is localhost, as in Docker."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def build_request(image: str, source: GitSource) -> BuildRequest:
    registry, name = split_image(image)
    return BuildRequest(source=source, host=read_host_settings(), name=name,
                        registry=Registry(registry) if registry else None, push=registry is not None)


def build_sync(request: BuildRequest, engine: DockerEngine, workspace: Workspace) -> Built:
    built = None
    for event in build(request, engine, workspace):
        built = event if isinstance(event, Built) else built
    if built is None:
        raise BuildFailed("the build ended without an image")
    return built


async def build_image(spawner: Any, source: GitSource, engine: DockerEngine | None = None,
                      workspace: Workspace | None = None) -> str:
    """The image to run for `source`; the build runs in a thread (JupyterHub's loop goes on)."""
    request = build_request(spawner.resource_request.image, source)
    spawner.log.info("Building %s for %s as %s", source.display, spawner._log_name, request.name)
    built = await asyncio.to_thread(build_sync, request, engine or DockerEngine(), workspace or Workspace.default())
    return built.image
