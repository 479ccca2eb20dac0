"""What every dsbuild spawner shares, in one mixin: the catalog traits and the parsed
catalog, the hub user's accounting (what their other servers hold), refusals as HTTP
400, and images built from a git URL by the `image_builder` hook.

    DsbuildSpawner(CatalogSpawnerMixin, KubeSpawner)            spawner/spawner.py
    KubeLaunchSpawner(DsbuildSpawner)                          launch/kube_spawner.py
    DockerLaunchSpawner(CatalogSpawnerMixin, DockerSpawner)    launch/docker_spawner.py

Each spawner adds only what its engine needs: `has_volume` (a server's home volume
exists) and how the resolved request is applied to a pod or a container."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from tornado import web
from traitlets import Callable, Dict, Float, Unicode
from traitlets.config import Configurable

from .catalog import Catalog, load_catalog, parse_catalog
from .errors import CatalogError, ChoiceError
from .names import check_image
from .options import parse_user_options, strip_launch_keys
from .resolve import HubUser, ResourceRequest, Usage, held_usage, resolve


def bad_request(error: Exception | str) -> web.HTTPError:
    """HTTP 400 whose message JupyterHub shows as-is on the form and in the API."""
    http_error = web.HTTPError(400, "%s", str(error))
    http_error.jupyterhub_message = str(error)
    return http_error


class CatalogSpawnerMixin(Configurable):
    """The catalog, the user's limits and git builds, for any JupyterHub spawner."""

    ready_check_interval = Float(
        0.1,
        config=True,
        help="""Seconds between two looks at a starting server: at its port until
        JupyterLab accepts a connection (on Kubernetes first at the pod reflector, no
        API call, until the pod runs); start() returns then, so JupyterHub's own first
        check of the server succeeds. JupyterHub (and KubeSpawner) alone wait with a
        backoff growing up to 5 s, which costs seconds of a few-second start
        (spawner/readiness.py). 0 leaves the waiting to them.""",
    )

    catalog = Dict(
        config=True,
        help="""The resource catalog as a plain dict: environments, cpu, memory,
        gpu, storage, data_volumes, limits, security, defaults. See
        docs/spawner.md for every key. Set this or `catalog_file`, not both.""",
    )
    catalog_file = Unicode(
        "",
        config=True,
        help="""Path of a YAML file holding the resource catalog (same format as
        `catalog`). Read once, when the spawner first needs it.""",
    )
    image_builder = Callable(
        None,
        allow_none=True,
        config=True,
        help="""Builds the image for a `git_url` request: called as
        `image_builder(spawner, git_source)` (may be async) with a
        `dsbuild.builder.source.GitSource`; returns the image reference to run.
        dsbuild's own is `dsbuild.builder.hub_builds.build_image` (builds on this
        machine's Docker engine and pushes to the registry the catalog's
        `git_builds.image_template` names). Without it, git URL requests are
        refused even if the catalog has `git_builds`.""",
    )

    _catalog: Catalog | None = None
    resource_request: ResourceRequest | None = None  # the last request resolved for this server

    def parsed_catalog(self) -> Catalog:
        """The checked catalog; a `CatalogError` here is an admin error."""
        if self._catalog is None:
            if bool(self.catalog) == bool(self.catalog_file):
                name = type(self).__name__
                raise CatalogError(f"set exactly one of {name}.catalog or {name}.catalog_file")
            self._catalog = parse_catalog(self.catalog) if self.catalog else load_catalog(self.catalog_file)
        return self._catalog

    def has_volume(self, orm_spawner: Any) -> bool:
        """Whether another server of the user holds a home volume (counts as storage)."""
        return False

    def hub_user(self, catalog: Catalog) -> HubUser:
        """The user, their groups, and what their other servers hold: CPU, memory and GPUs
        while they run, storage while `has_volume`. Launch keys in their options are ignored."""
        others = Usage()
        for name, orm_spawner in (getattr(self.user, "orm_spawners", None) or {}).items():
            if name == self.name:
                continue
            others += held_usage(strip_launch_keys(orm_spawner.user_options), catalog,
                                 running=orm_spawner.server is not None, has_volume=self.has_volume(orm_spawner))
        groups = frozenset(g.name for g in (getattr(self.user, "groups", None) or []))
        return HubUser(self.user.name, groups, others)

    def refuse(self, error: Exception) -> web.HTTPError:
        """Log a refused request and turn it into HTTP 400 (nothing was started)."""
        self.log.info("Refused spawn request for %s: %s", self._log_name, error)
        return bad_request(error)

    def resolve_options(self, user_options: Any) -> ResourceRequest:
        """resolve() against the catalog and the user's limits; raises SpawnRequestError."""
        catalog = self.parsed_catalog()
        request = resolve(parse_user_options(user_options), catalog, self.hub_user(catalog))
        if request.git and self.image_builder is None:
            raise ChoiceError("this hub cannot build from git URLs (no image builder is configured); "
                              "choose one of the listed environments")
        return request

    async def with_built_image(self, request: ResourceRequest) -> ResourceRequest:
        """For a git request, the request with the image `image_builder` built."""
        if not request.git:
            return request
        self.resource_request = request  # the hook reads the template's image from it
        image = self.image_builder(self, request.git)
        if inspect.isawaitable(image):
            image = await image
        return dataclasses.replace(request, image=check_image(image))
