"""The launch service's settings, checked once at start-up. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dsbuild.builder.errors import DsbuildError
from dsbuild.spawner.quantities import Memory

from .limits import Network, Rate, parse_networks
from .routes import KNOWN_SCHEMES

MODES = ("anonymous", "authenticated")


class ConfigInvalid(DsbuildError):
    """A `dsbuild serve` setting is wrong; the message names it."""

    exit_code = 2


def _url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigInvalid(f"{what} must be an http(s) URL, got {value!r}")
    return value.rstrip("/") + "/"


def parse_rate(text: str, what: str) -> Rate:
    """Launches per client: "10/hour", "100/day", "0" (no limit)."""
    try:
        return Rate.parse(text)
    except ValueError as err:
        raise ConfigInvalid(f"{what}: {err}") from None


def parse_cidrs(values, what: str) -> tuple[Network, ...]:
    try:
        return parse_networks(values)
    except ValueError as err:
        raise ConfigInvalid(f"{what}: {err}") from None


def parse_size(text: str, what: str) -> int:
    """Bytes from "500Mi", "2G", "0" (unlimited)."""
    try:
        return Memory.parse(text).bytes
    except ValueError as err:
        raise ConfigInvalid(f"{what}: {err}") from None


@dataclass(frozen=True)
class LaunchConfig:
    hub_url: str  # where browsers reach JupyterHub, e.g. http://127.0.0.1:8000/
    hub_api_url: str  # where this service reaches the hub's REST API, e.g. http://127.0.0.1:8000/hub/api/
    hub_token: str = field(repr=False, default="")
    mode: str = "anonymous"
    base_url: str = "/"  # this service's URL prefix
    public_url: str | None = None  # this service's public URL for links; default: from the request
    allowed_schemes: tuple[str, ...] = ("https",)
    max_builds: int = 2
    per_repo_limit: int = 10  # running + starting servers per repository; 0: no limit
    max_servers: int = 20  # running + starting servers on the hub, all users; 0: no limit
    max_starting: int = 20  # launches in progress (checking, building, starting) at once
    launch_rate: Rate = Rate(10, 3600)  # launches per client (mybinder.org's default); Rate(0, ...): none
    trusted_proxies: tuple[Network, ...] = ()  # X-Forwarded-For is read only from these
    allowed_host_networks: tuple[Network, ...] = ()  # private networks git may fetch from
    max_repo_size: int = 500 * 2**20  # bytes at the commit; 0: no limit
    image_prefix: str = "dsbuild"
    registry: str | None = None  # push built images there (a cluster pulls from it)
    start_timeout: float = 180
    token_lifetime: int = 8 * 3600  # anonymous users' tokens
    user_prefix: str = "binder-"
    user_options: dict = field(default_factory=dict)  # catalog choices sent with every launch
    service_name: str = "dsbuild"
    oauth_redirect_url: str | None = None  # authenticated mode: this service's /oauth_callback

    def __post_init__(self) -> None:
        object.__setattr__(self, "hub_url", _url(self.hub_url, "--hub-url"))
        object.__setattr__(self, "hub_api_url", _url(self.hub_api_url, "--hub-api-url"))
        if self.public_url:
            object.__setattr__(self, "public_url", _url(self.public_url, "--public-url"))
        if self.mode not in MODES:
            raise ConfigInvalid(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.base_url.startswith("/") or not self.base_url.endswith("/"):
            raise ConfigInvalid(f"--base-url must start and end with '/', got {self.base_url!r}")
        unknown = [s for s in self.allowed_schemes if s not in KNOWN_SCHEMES]
        if unknown or not self.allowed_schemes:
            raise ConfigInvalid(f"--allow-scheme takes {', '.join(KNOWN_SCHEMES)}; got {', '.join(unknown) or 'none'}")
        for name in ("max_builds", "per_repo_limit", "max_repo_size", "token_lifetime", "max_servers", "max_starting"):
            if getattr(self, name) < 0:
                raise ConfigInvalid(f"{name} must not be negative")
        if self.max_builds == 0:
            raise ConfigInvalid("--max-builds must be at least 1")
        if self.max_starting == 0:
            raise ConfigInvalid("--max-starting must be at least 1")
        if not self.hub_token:
            raise ConfigInvalid("no JupyterHub API token: set JUPYTERHUB_API_TOKEN or --hub-token-file "
                                "(`dsbuild hub up` writes one)")
        if self.mode == "authenticated" and not self.oauth_redirect_url:
            raise ConfigInvalid("authenticated mode needs --oauth-redirect-url (this service's /oauth_callback)")
