"""The launch side's errors, all under `DsbuildError` (builder/errors.py, the one root).

`LaunchError`s: one type per way a launch can fail, each with a one-line message and the
HTTP status of the page that shows it; a user's mistake is a 4xx and starts no build.
`ConfigInvalid` (a `dsbuild serve` setting) and `HubError` (`dsbuild hub up`/`down`) are
the operator's, shown by the CLI with their own exit codes."""

from __future__ import annotations

from dsbuild.builder.errors import DsbuildError


class ConfigInvalid(DsbuildError):
    """A `dsbuild serve` setting is wrong; the message names it."""

    exit_code = 8


class HubError(DsbuildError):
    """`hub up` or `hub down` could not do its job; the message says why."""

    exit_code = 7


class LaunchError(DsbuildError):
    """Base class: `str(err)` is the line shown on the page and in the event stream."""

    exit_code = 12
    status = 500
    reason = "error"  # the `reason` field of a `failed` stream event


class BadLaunchPath(LaunchError):
    """The launch URL is malformed: bad spec, ref syntax, or a path that tries to escape."""

    status = 400
    reason = "bad-request"


class UnknownProvider(LaunchError):
    """The provider in /v2/<provider>/... is not one this service knows."""

    status = 404
    reason = "unknown-provider"


class SchemeNotAllowed(LaunchError):
    """The git URL's scheme (file://, ssh://, ...) is not enabled by the admin."""

    status = 403
    reason = "scheme-not-allowed"


class RepoNotFound(LaunchError):
    """The repository cannot be read or the ref does not exist in it."""

    status = 404
    reason = "not-found"


class RepoTooLarge(LaunchError):
    """The files at the commit are over the configured size limit."""

    status = 413
    reason = "too-large"


class LaunchLimitReached(LaunchError):
    """This repository already has the maximum number of running launches."""

    status = 429
    reason = "repo-limit"


class TooManyBuilds(LaunchError):
    """The maximum number of concurrent builds is running; try again later."""

    status = 503
    reason = "build-limit"


class HubUnavailable(LaunchError):
    """JupyterHub's REST API did not answer or refused the service's token."""

    status = 502
    reason = "hub"


class ServerStartFailed(LaunchError):
    """JupyterHub refused or failed to start the server (limits, image, timeout)."""

    status = 502
    reason = "launch"
