"""DockerLaunchSpawner: DockerSpawner for one machine, with the spawner's catalog and limits.

    user_options --split_launch_options--> launch image + catalog keys
    catalog keys + catalog + HubUser --resolve()--> ResourceRequest (the same limits as on Kubernetes)
    ResourceRequest --local_resources--> --cpus / --memory for the container (GPUs refused)

The image is the one the launch service built (it must exist on this engine and carry
dsbuild's labels), else the catalog environment's image. DockerSpawner still creates,
starts, watches and removes the containers; this class only decides what goes in them.
Requests are refused with HTTP 400 in JupyterHub's `apply_user_options` step, before
any container exists."""

from __future__ import annotations

from typing import Any

from dockerspawner import DockerSpawner
from dsbuild.builder.names import HUB_LABEL, VERSION_LABEL
from dsbuild.spawner.errors import SpawnRequestError
from dsbuild.spawner.mixin import CatalogSpawnerMixin, bad_request
from traitlets import Bool, Unicode, default

from .spawning import local_resources, split_launch_options


async def _apply(spawner: "DockerLaunchSpawner", user_options: dict) -> None:
    await spawner.choose(user_options)


class DockerLaunchSpawner(CatalogSpawnerMixin, DockerSpawner):
    """Runs dsbuild images as containers on the local Docker engine, with the CPU and
    memory a user may have under the catalog's limits (the mixin's, spawner/mixin.py)."""

    token_in_url = Bool(
        False,
        config=True,
        help="""Let a `?token=` in the first URL log the browser in (JUPYTERHUB_ALLOW_TOKEN_IN_URL).
        Anonymous launches need it: their temporary users cannot log in to the hub.""",
    )
    hub_label = Unicode("dsbuild", config=True, help="Value of the io.dsbuild.hub label on every container.")

    _chosen_image: str | None = None

    @default("cmd")
    def _default_cmd(self):
        return ["jupyterhub-singleuser"]

    @default("remove")
    def _default_remove(self):
        return True

    @default("pull_policy")
    def _default_pull_policy(self):
        return "never"  # dsbuild builds the images here; there is no registry to pull from

    @default("use_internal_ip")
    def _default_use_internal_ip(self):
        return True  # the proxy reaches the container at its bridge address; no published ports

    @default("prefix")
    def _default_prefix(self):
        return "dsbuild"

    @default("extra_host_config")
    def _default_host_config(self):
        return {"init": True, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}

    @default("extra_create_kwargs")
    def _default_create_kwargs(self):
        return {"labels": {HUB_LABEL: self.hub_label}}

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply

    async def choose(self, user_options: Any) -> None:
        """Resolve `user_options` against the catalog and limits; HTTP 400 when refused."""
        self._chosen_image = None
        try:
            launch, rest = split_launch_options(user_options)
            request = self.resolve_options(rest)
            local = local_resources(request)
        except SpawnRequestError as err:
            raise self.refuse(err) from None
        image = launch.image if launch else (await self.with_built_image(request)).image
        await self._check_image(image)
        self._chosen_image = self.image = image
        self.cpu_limit = local.cpu
        self.mem_limit = local.memory
        self.log.info("%s: %s with %s CPUs, %s bytes of memory", self._log_name, image, local.cpu, local.memory)
        for note in local.notes:
            self.log.info("%s: %s", self._log_name, note)

    async def _check_image(self, image: str) -> None:
        try:
            info = await self.docker("inspect_image", image)
        except Exception:  # docker.errors.ImageNotFound, APIError
            raise bad_request(f"image {image} is not on this Docker engine; build it with dsbuild first") from None
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        if VERSION_LABEL not in labels:
            raise bad_request(f"image {image} was not built by dsbuild; this hub runs only dsbuild images")

    async def check_allowed(self, image: str) -> str:
        """DockerSpawner's check of user_options['image']: only the one `choose` checked."""
        if image != self._chosen_image:
            raise bad_request(f"image {image} was not checked for this server")
        return image

    def get_env(self) -> dict:
        env = super().get_env()
        if self.token_in_url:
            env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] = "1"
        return env
