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

import asyncio
from typing import Any

from dockerspawner import DockerSpawner
from dsbuild.builder.names import HUB_LABEL, VERSION_LABEL
from dsbuild.spawner.errors import SpawnRequestError
from dsbuild.spawner.mixin import CatalogSpawnerMixin, bad_request
from traitlets import Bool, Integer, Unicode, default

from dsbuild.spawner.readiness import until_listening

from .spawning import local_resources, split_launch_options

NOTEBOOK_UID = "1000:1000"  # the images' jovyan (templates/Dockerfile.j2)
HOME = "/home/jovyan"


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
    hub_label = Unicode("dsbuild", config=True, help="Value of the io.dsbuild.hub label on every container and volume.")
    pids_limit = Integer(1024, config=True, help="Most processes and threads in one server's container (0: no limit).")
    home_volume_template = Unicode(
        "{prefix}-{username}--{servername}-home",
        config=True,
        help="""Name of each server's home volume, a Docker volume mounted at /home/jovyan
        (filled from the image at its first start). It lives until the server is deleted
        (a temporary user's when the user is deleted), not when the server stops; the
        storage limits count it while it exists. Empty: no home volume.""",
    )

    _chosen_image: str | None = None
    home_volume: str | None = None

    def has_volume(self, orm_spawner: Any) -> bool:
        """A stored server holds a home volume (counted against storage limits) until deleted."""
        return bool((orm_spawner.state or {}).get("home_volume"))

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
        config = {"init": True, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
        if self.pids_limit:
            config["pids_limit"] = self.pids_limit
        return config

    @default("extra_create_kwargs")
    def _default_create_kwargs(self):
        # uid 1000 whatever the image's USER (a repository's own Dockerfile may say root)
        return {"labels": {HUB_LABEL: self.hub_label}, "user": NOTEBOOK_UID}

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

    async def start(self):
        if self.home_volume_template:
            name = self.home_volume or self._render_templates(self.home_volume_template)
            await self.docker("create_volume", name=name, labels={HUB_LABEL: self.hub_label})  # idempotent
            self.home_volume = name
            self.volumes = {**self.volumes, name: {"bind": HOME, "mode": "rw"}}
        ip, port = await super().start()
        if self.ready_check_interval > 0:
            await self._until_listening(f"http://{ip}:{port}")
        return ip, port

    async def _until_listening(self, url: str) -> None:
        """Return once JupyterLab accepts connections at `url` (or its container ended,
        or `http_timeout` passed: JupyterHub's own check then reports it)."""
        listening = asyncio.ensure_future(until_listening(url, self.ready_check_interval, self.http_timeout))
        try:
            while not listening.done():
                await asyncio.wait({listening}, timeout=1.0)
                if not listening.done() and await self.poll() is not None:
                    return  # the container exited
        finally:
            listening.cancel()

    async def delete_forever(self) -> None:
        """The server (or its user) is deleted: its home volume goes with it."""
        if not self.home_volume:
            return
        try:
            await self.docker("remove_volume", name=self.home_volume)
        except Exception as err:  # docker.errors.NotFound: already gone
            if "no such volume" not in str(err).lower() and getattr(err, "status_code", None) != 404:
                raise
        self.log.info("deleted home volume %s of %s", self.home_volume, self._log_name)
        self.home_volume = None

    def load_state(self, state):
        super().load_state(state)
        self.home_volume = state.get("home_volume") or None

    def get_state(self):
        state = super().get_state()
        if self.home_volume:
            state["home_volume"] = self.home_volume
        return state

    def get_env(self) -> dict:
        env = super().get_env()
        if self.token_in_url:
            env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] = "1"
        return env
