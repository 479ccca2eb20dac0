"""KubeLaunchSpawner: the Kubernetes spawner (DsbuildSpawner) taking images from the
launch service. Used when `dsbuild serve` launches onto a cluster: the service builds,
pushes to `--registry`, and starts servers with the launch keys in user_options
(spawning.py); everything else (catalog, limits, pods, volumes) is DsbuildSpawner's and
the shared mixin's (spawner/mixin.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dsbuild.spawner.errors import ChoiceError, SpawnRequestError
from dsbuild.spawner.resolve import ResourceRequest
from dsbuild.spawner.spawner import DsbuildSpawner
from kubespawner import KubeSpawner
from traitlets import Unicode

from .spawning import TEMPORARY_USER_PREFIX, split_launch_options


class KubeLaunchSpawner(DsbuildSpawner):
    """DsbuildSpawner that also runs the images the launch service built and pushed."""

    launch_image_prefix = Unicode(
        "",
        config=True,
        help="""Images named in user_options must start with this, the registry the launch
        service pushes to (e.g. "registry.example.org:5000/"). Empty: such requests are refused.""",
    )

    temporary_user_prefix = Unicode(
        TEMPORARY_USER_PREFIX,
        config=True,
        help="""Users whose names start with this are the launch service's temporary users
        (`dsbuild serve`'s anonymous mode): their home volume (PVC) is deleted with them.
        Other users' volumes are kept, as DsbuildSpawner keeps them. Empty: keep all.""",
    )

    def is_temporary(self) -> bool:
        return bool(self.temporary_user_prefix) and self.user.name.startswith(self.temporary_user_prefix)

    async def delete_forever(self) -> None:
        """A temporary user is deleted: its PVC goes too (KubeSpawner's deletion, with retries)."""
        if not self.is_temporary():
            await super().delete_forever()
            return
        self.delete_pvc = True
        await KubeSpawner.delete_forever(self)

    async def choose_resources(self, user_options: Any) -> ResourceRequest:
        try:
            launch, rest = split_launch_options(user_options)
            if launch and not (self.launch_image_prefix and launch.image.startswith(self.launch_image_prefix)):
                raise ChoiceError(f"image {launch.image} is not from the launch service's registry")
        except SpawnRequestError as err:
            self._refused = True
            raise self.refuse(err) from None
        request = await super().choose_resources(rest)
        if launch:
            request = dataclasses.replace(request, image=launch.image)
            self.resource_request = request
        return request
