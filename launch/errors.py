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
    retry_after: int | None = None  # seconds, sent as Retry-After with 429 and 503

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = max(1, int(retry_after + 0.999))


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
    retry_after = 60


class TooManyBuilds(LaunchError):
    """The maximum number of concurrent builds is running; try again later."""

    status = 503
    reason = "build-limit"
    retry_after = 60


class RateLimited(LaunchError):
    """This client started as many launches as it may in the current window."""

    status = 429
    reason = "rate-limit"


class ServerLimitReached(LaunchError):
    """The hub runs the most servers this service may have running or starting."""

    status = 503
    reason = "server-limit"
    retry_after = 60


class TooManyLaunches(LaunchError):
    """The most launches this service handles at once are in progress."""

    status = 503
    reason = "launch-limit"
    retry_after = 30


class CrossSiteRequest(LaunchError):
    """The event stream was requested by another site's page or without the launch page's token, or a launch
    page by something other than a top-level navigation (a script, a frame)."""

    status = 403
    reason = "cross-site"


class HubUnavailable(LaunchError):
    """JupyterHub's REST API did not answer or refused the service's token."""

    status = 502
    reason = "hub"


class ServerStartFailed(LaunchError):
    """JupyterHub refused or failed to start the server (limits, image, timeout)."""

    status = 502
    reason = "launch"
