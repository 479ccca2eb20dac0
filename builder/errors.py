"""One error type per kind of failure. Each carries a one-line message a user can
act on and the exit code the CLI returns for it."""

from __future__ import annotations


class DsbuildError(Exception):
    """Base class: `str(err)` is the one line shown to the user."""

    exit_code = 1


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
