"""The kinds of failure the spawner reports, one type each.

`CatalogError` is the admin's: the catalog in the hub configuration is wrong,
and its message names the bad key. The others are the user's: the options sent
with a spawn request cannot be honoured. They share `SpawnRequestError`, which
the spawner turns into HTTP 400 before anything is sent to Kubernetes.
All are `DsbuildError`s (builder/errors.py, the one root) with their own exit code.
"""

from __future__ import annotations

from dsbuild.builder.errors import DsbuildError


class CatalogError(DsbuildError, ValueError):
    """The admin's resource catalog is malformed; the message names the key."""

    exit_code = 9


class SpawnRequestError(DsbuildError, ValueError):
    """A user's spawn request cannot be honoured (HTTP 400)."""

    exit_code = 10
    status = 400


class OptionsError(SpawnRequestError):
    """A user option has the wrong type or an impossible value."""


class ChoiceError(SpawnRequestError):
    """A user option names something the catalog does not offer."""


class LimitExceeded(SpawnRequestError):
    """A request is over a per-server or per-user limit; the message names it."""


class SpawnFailed(DsbuildError, RuntimeError):
    """Kubernetes could not run a server that passed our checks: no node can hold
    it, or the API refused it (resource quota, limit range, admission). The
    message quotes Kubernetes' reason; JupyterHub shows it as "Spawn failed: ..."."""

    exit_code = 11

    def __init__(self, message: str):
        super().__init__(message)
        self.jupyterhub_message = message
