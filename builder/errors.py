"""The one root of dsbuild's errors, and the builder's own kinds.

Every error dsbuild raises on purpose is a `DsbuildError`: `str(err)` is one line a user
can act on, `exit_code` is what the CLI exits with, and `status` the HTTP status when
the error is the answer to a request (launch pages, spawn requests). Callers check
`isinstance(err, DsbuildError)`; anything else is a bug and gets a traceback in the log.

Exit codes, one per kind (docs/builder.md lists them):
1 any other DsbuildError, 2 source (SourceError), 3 repository configuration
(ConfigError), 4 engine (EngineUnavailable), 5 build (BuildFailed), 6 run (RunFailed),
7 local hub (launch.localhub.HubError), 8 service settings (launch.config.ConfigInvalid),
9 resource catalog (spawner.errors.CatalogError), 10 spawn request
(spawner.errors.SpawnRequestError), 11 spawn on Kubernetes (spawner.errors.SpawnFailed),
12 launch request (launch.errors.LaunchError)."""

from __future__ import annotations


class DsbuildError(Exception):
    """Base class: `str(err)` is the one line shown to the user."""

    exit_code = 1
    status = 500  # the HTTP status when this error answers a request


class SourceError(DsbuildError):
    """The repository or ref cannot be found or fetched."""

    exit_code = 2


class ConfigError(DsbuildError):
    """The repository's configuration files cannot be built as they are."""

    exit_code = 3


class UnsupportedConfig(ConfigError):
    """A configuration file needs something this machine cannot reach."""


class EngineUnavailable(DsbuildError):
    """The Docker engine does not answer."""

    exit_code = 4


class BuildFailed(DsbuildError):
    """The image build ran and failed; no image was tagged."""

    exit_code = 5

    def __init__(self, message: str, log_tail: tuple[str, ...] = ()):
        super().__init__(message)
        self.log_tail = log_tail


class RunFailed(DsbuildError):
    """The container did not start or JupyterLab did not answer."""

    exit_code = 6
