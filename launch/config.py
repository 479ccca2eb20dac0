"""The launch service's settings, declared once as traitlets (like JupyterHub's) and
checked once at start-up. Pure.

Each setting is a trait with its type, default and help. `dsbuild serve`'s click options
are generated from these traits (cli/settings.py: same default, same help), so a default
lives here only. `LaunchConfig(**values)` checks every value and raises `ConfigInvalid`
naming the setting's command-line option."""

from __future__ import annotations

import re
from typing import Sequence
from urllib.parse import urlsplit

from traitlets import Any, Bool, Dict, Enum, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from dsbuild.builder.increment import DEFAULT_MAX_INCREMENTS
from dsbuild.spawner.quantities import Memory

from .errors import ConfigInvalid
from .limits import Rate, parse_networks
from .routes import KNOWN_SCHEMES
from .spawning import TEMPORARY_USER_PREFIX

MODES = ("anonymous", "authenticated")


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


def parse_pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """KEY=VALUE strings -> a dict; ConfigInvalid names the option (pure)."""
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ConfigInvalid(f"{what} wants KEY=VALUE, got {value!r}")
        pairs[key] = val
    return pairs


def parse_size(text: str, what: str) -> int:
    """Bytes from "500Mi", "2G", "0" (unlimited)."""
    try:
        return Memory.parse(text).bytes
    except ValueError as err:
        raise ConfigInvalid(f"{what}: {err}") from None


def apply_settings(obj: Configurable, values: dict, error: type[Exception]) -> None:
    """Set traits one by one, so a wrong type or value is `error` naming its option."""
    traits = obj.traits(config=True)
    for name, value in values.items():
        if name not in traits:
            raise error(f"unknown setting {name!r}")
        try:
            setattr(obj, name, value)
        except TraitError:
            raise error(f"--{name.replace('_', '-')} must be {traits[name].info()}, got {value!r}") from None


class LaunchConfig(Configurable):
    """Settings of `dsbuild serve`."""

    hub_url = Unicode("", config=True, help="Where browsers reach JupyterHub, e.g. http://127.0.0.1:8000/.")
    hub_api_url = Unicode("", config=True, help="Where this service reaches the hub's REST API. Default: HUB_URL/hub/api/.")
    hub_token = Unicode("", config=True, help="The service's JupyterHub API token.")
    mode = Enum(MODES, "anonymous", config=True,
                help="anonymous: a temporary user per launch (like mybinder.org); authenticated: the logged-in "
                     "user's named server.")
    base_url = Unicode("/", config=True,
                       help="URL prefix of every page, badge, stream and link of this service, e.g. /services/dsbuild/ "
                            "behind the hub's proxy (JupyterHub's route for a service with a URL; a managed service "
                            "gets it as $JUPYTERHUB_SERVICE_PREFIX). Default: / (the service alone).")
    public_url = Unicode(None, allow_none=True, config=True,
                         help="This service's public URL, for links and badges. Default: from each request.")
    allowed_schemes = List(Unicode(), ["https"], config=True,
                           help="Git URL schemes /v2/git/ accepts. file:// lets anyone who can open a link build "
                                "any repository on this machine.")
    max_builds = Int(2, config=True, help="Builds that may run at once.")
    per_repo_limit = Int(10, config=True, help="Running or starting servers per repository; 0 for no limit.")
    max_servers = Int(20, config=True, help="Running or starting servers on the hub, all users together; 0 for no "
                      "limit. A launch beyond it gets 503 and starts nothing.")
    max_starting = Int(20, config=True, help="Launches in progress at once (checking, building, starting); more get 503.")
    launch_rate = Any(Rate(10, 3600), config=True,
                      help="Launches one client may start, COUNT/UNIT (UNIT: second, minute, hour, day); 0 for no "
                           "limit. A client is its IPv4 address or IPv6 /64 (mybinder.org's default: 10/hour).")
    rate_state = Unicode("", config=True,
                         help="SQLite file that keeps --launch-rate's counts, so restarting the service does not "
                              "reset them (per host). Default: launch-rate.sqlite in --hub-state; empty: memory only.")
    trusted_proxies = Any((), config=True,
                          help="Reverse proxies in front of this service (CIDRs). Only connections from these have "
                               "X-Forwarded-For read to find the client. Default: none (the peer address counts).")
    allowed_host_networks = Any((), config=True,
                                help="Loopback, private or link-local networks (CIDRs) git may fetch from; refused "
                                     "by default, e.g. 10.0.0.0/8 for an internal git server.")
    max_repo_size = Int(500 * 2**20, config=True,
                        help="Largest repository (bytes of files at the commit) that is built; 0 for no limit.")
    image_prefix = Unicode("dsbuild", config=True,
                           help="Images are named PREFIX-<repo>-<hash>:<commit> (builder/names.py).")
    max_increments = Int(DEFAULT_MAX_INCREMENTS, config=True,
                         help="A new commit whose only change is its Python packages is built on top of the "
                              "repository's newest image (only the difference installed), at most this many times "
                              "in a row; then in full. 0: always in full (docs/builder.md).")
    gc_interval = Float(3600.0, config=True,
                        help="Seconds between garbage collections of git mirrors, build contexts and this service's "
                             "images (by age and disk use, like `dsbuild gc`); 0 turns it off.")
    gc_max_age = Float(7 * 86400.0, config=True, help="Garbage collection: seconds since last use after which an item goes.")
    gc_max_disk = Int(50 * 2**30, config=True,
                      help="Garbage collection: bytes each kind (mirrors, contexts, images) may use; the oldest go "
                           "first; 0 for no limit.")
    registry = Unicode(None, allow_none=True, config=True,
                       help="Push images to this HOST:PORT registry (for a hub on Kubernetes).")
    build_on = Enum(("docker", "kubernetes"), "docker", config=True,
                    help="Where builds run: docker, the local Docker engine; kubernetes, a pod per build on the "
                         "cluster, built by the long-running BuildKit daemon on its node (needs --registry and "
                         "--build-image; docs/launch.md).")
    build_image = Unicode("", config=True,
                          help="Kubernetes builds: the image with buildkitd, runc and the CNI plugins, for the build "
                               "daemons and build pods (tests/buildkit/image.sh builds one).")
    build_namespace = Unicode("default", config=True,
                              help="Kubernetes builds: the namespace of the build daemons, build pods and Leases.")
    build_cpu = Unicode("2", config=True,
                        help="Kubernetes builds: CPU limit of a build pod; the build's steps run under it.")
    build_memory = Unicode("4Gi", config=True,
                           help="Kubernetes builds: memory limit of a build pod; the build's steps run under it.")
    build_disk = Unicode("20Gi", config=True,
                         help="Kubernetes builds: BuildKit's cache on each build node is kept under this.")
    build_deadline = Int(3600, config=True, help="Kubernetes builds: seconds a build pod may live (activeDeadlineSeconds).")
    build_daemon_root = Unicode("/var/lib/dsbuild-buildkit", config=True,
                                help="Kubernetes builds: the folder on each build node that keeps its build daemon's "
                                     "state and cache (a hostPath).")
    build_cgroup = Unicode("/kubepods/pod{uid}", config=True,
                           help="Kubernetes builds: the cgroup of a Guaranteed pod on the build nodes, {uid} being "
                                "the pod's uid ({uid_}: with underscores); the build's steps run in their build "
                                "pod's. The kubelet's cgroupfs driver: CGROUP-ROOT/kubepods/pod{uid}; systemd: "
                                "/kubepods.slice/kubepods-pod{uid_}.slice.")
    build_registry = Unicode(None, allow_none=True, config=True,
                             help="Kubernetes builds: the registry as the build daemons reach it (HOST:PORT). "
                                  "Default: --registry.")
    build_host_network = Bool(False, config=True,
                              help="Kubernetes builds: run the build daemons on the node's network, for a registry "
                                   "on the nodes' loopback address (the test cluster's). Build steps still get their "
                                   "own network (buildkitd's CNI bridge).")
    build_node_selector = List(Unicode(), [], config=True,
                               help="Kubernetes builds: KEY=VALUE node labels of the build nodes (build daemons "
                                    "and build pods run there).")
    build_tolerations = List(Unicode(), [], config=True,
                             help="Kubernetes builds: KEY=VALUE:EFFECT taints build daemons and pods tolerate.")
    kubeconfig = Unicode(None, allow_none=True, config=True,
                         help="Kubernetes builds: the kubeconfig file. Default: in-cluster, else $KUBECONFIG.")
    start_timeout = Float(180.0, config=True, help="Seconds to wait for a server to start.")
    token_lifetime = Int(8 * 3600, config=True, help="Seconds an anonymous user's token is valid.")
    user_prefix = Unicode(TEMPORARY_USER_PREFIX, config=True, help="Name prefix of anonymous launches' temporary users.")
    pool_size = Int(0, config=True,
                    help="Anonymous mode: servers started in advance, in all, for the images launched recently; "
                         "a launch of such an image takes one (each is one temporary user's, handed to one launch "
                         "only, its token made then) and opens without waiting for a start. 0: no pool. They "
                         "count against this limit, not --max-servers.")
    pool_per_image = Int(1, config=True, help="Anonymous mode: servers started in advance for one image, at most.")
    pool_idle_timeout = Float(300.0, config=True,
                              help="Anonymous mode: seconds a server started in advance waits to be taken before it "
                                   "is removed (keep it below the hub's --cull-timeout).")
    user_options = Dict(config=True, help="Catalog choices sent with every launch, e.g. {'cpu': '2'}.")
    service_name = Unicode("dsbuild", config=True, help="This service's name in JupyterHub.")
    oauth_redirect_url = Unicode(None, allow_none=True, config=True,
                                 help="Authenticated mode: this service's /oauth_callback URL as the hub knows it.")

    def __init__(self, **kwargs):
        super().__init__(**{k: kwargs.pop(k) for k in ("config", "parent") if k in kwargs})
        apply_settings(self, kwargs, ConfigInvalid)
        self.check()

    @validate("launch_rate")
    def _rate(self, proposal):
        value = proposal["value"]
        return value if isinstance(value, Rate) else parse_rate(str(value), "--launch-rate")

    @validate("build_cgroup")
    def _cgroup(self, proposal):
        value = proposal["value"]
        if not re.fullmatch(r"/[A-Za-z0-9_./{}-]*", value) or ".." in value or \
                ("{uid}" not in value and "{uid_}" not in value):
            raise ConfigInvalid(f"--build-cgroup wants an absolute cgroup path with {{uid}} or {{uid_}} in it, "
                                f"e.g. /kubepods/pod{{uid}}; got {value!r}")
        return value

    @validate("trusted_proxies", "allowed_host_networks")
    def _networks(self, proposal):
        value = proposal["value"]
        what = "--trusted-proxy" if proposal["trait"].name == "trusted_proxies" else "--allow-host-network"
        values = (value,) if isinstance(value, str) else tuple(value)
        try:
            return parse_networks(str(v) for v in values)
        except ValueError as err:
            raise ConfigInvalid(f"{what}: {err}") from None

    def check(self) -> None:
        """Normalise the URLs and refuse what cannot work; the messages name the option."""
        self.hub_url = _url(self.hub_url, "--hub-url")
        self.hub_api_url = _url(self.hub_api_url or self.hub_url + "hub/api/", "--hub-api-url")
        if self.public_url:
            self.public_url = _url(self.public_url, "--public-url")
        if not self.base_url.startswith("/") or not self.base_url.endswith("/"):
            raise ConfigInvalid(f"--base-url must start and end with '/', got {self.base_url!r}")
        unknown = [s for s in self.allowed_schemes if s not in KNOWN_SCHEMES]
        if unknown or not self.allowed_schemes:
            raise ConfigInvalid(f"--allow-scheme takes {', '.join(KNOWN_SCHEMES)}; got {', '.join(unknown) or 'none'}")
        for name in ("max_builds", "per_repo_limit", "max_repo_size", "token_lifetime", "max_servers", "max_starting",
                     "gc_interval", "gc_max_age", "gc_max_disk", "pool_size", "pool_per_image", "pool_idle_timeout"):
            if getattr(self, name) < 0:
                raise ConfigInvalid(f"{name} must not be negative")
        if self.max_builds == 0:
            raise ConfigInvalid("--max-builds must be at least 1")
        if self.max_starting == 0:
            raise ConfigInvalid("--max-starting must be at least 1")
        if not self.hub_token:
            raise ConfigInvalid("no JupyterHub API token: set JUPYTERHUB_API_TOKEN or --hub-token-file "
                                "(`dsbuild hub up` writes one)")
        if self.build_on == "kubernetes" and not (self.registry and self.build_image):
            raise ConfigInvalid("--build-on kubernetes needs --registry and --build-image")
        if self.mode == "authenticated" and self.pool_size:
            raise ConfigInvalid("--pool-size needs anonymous mode (an authenticated launch opens the user's own server)")
        if self.mode == "authenticated" and not self.oauth_redirect_url:
            raise ConfigInvalid("authenticated mode needs --oauth-redirect-url (this service's /oauth_callback)")
