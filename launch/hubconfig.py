"""The local hub's configuration, pure: its settings (traitlets, declared once; `dsbuild hub
up`'s click options are generated from them), its state folder's layout, the generated
jupyterhub_config.py and the launch.json that `dsbuild serve` reads. Starting and
stopping the processes is localhub.py."""

from __future__ import annotations

from pathlib import Path

from traitlets import Bool, Enum, Int, List, TraitType, Unicode
from traitlets.config import Configurable

from dsbuild.spawner.catalog import Catalog, parse_catalog
from dsbuild.spawner.hub_config import catalog_data, python_literal

from .config import apply_settings
from .errors import HubError
from .templating import read_template, render_config

DEFAULT_STATE = Path(".run/hub")
AUTHENTICATORS = ("null", "dummy", "pam")
SPAWNERS = ("docker", "kubernetes")
MODES = ("anonymous", "authenticated")
SERVICE_NAME = "dsbuild"  # the launch service's name in JupyterHub (dsbuild serve's --service-name default)
# JupyterHub's proxy route for a service with a URL; the service's --base-url then. The
# Helm chart spells it once more (_helpers.tpl, dsbuild.launchPrefix).
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"


class PathTrait(TraitType):
    """A filesystem path; strings are converted."""

    info_text = "a path"

    def validate(self, obj, value):
        if isinstance(value, (str, Path)):
            return Path(value)
        self.error(obj, value)


class HubOptions(Configurable):
    """Settings of `dsbuild hub up`."""

    state_dir = PathTrait(DEFAULT_STATE, config=True,
                          help="Configuration, secrets, database, logs and pid files.")
    ip = Unicode("127.0.0.1", config=True, help="Where the hub's proxy listens (0.0.0.0: everywhere).")
    port = Int(8000, config=True, help="The hub's public port.")
    proxy_api_port = Int(8001, config=True, help="configurable-http-proxy's API port (127.0.0.1).")
    hub_ip = Unicode(None, allow_none=True, config=True,
                     help="Where the hub's API listens; containers reach it there. Default: the servers' "
                          "network's address on this machine.")
    hub_port = Int(8081, config=True, help="The hub's API port.")
    mode = Enum(MODES, "anonymous", config=True,
                help="anonymous: no logins, temporary users culled when idle; authenticated: users log in.")
    authenticator = Unicode(None, allow_none=True, config=True,
                            help=f"Authenticated mode: {', '.join(AUTHENTICATORS[1:])} or a class name. Default: pam. "
                                 "dummy's shared password comes from $DSBUILD_HUB_PASSWORD.")
    admin_users = List(Unicode(), config=True, help="Hub admins, by user name.")
    catalog_file = PathTrait(None, allow_none=True, config=True,
                             help="Resource catalog (docs/spawner.md). Default: a small local one (1-2 CPUs, 2-4 GiB).")
    service_url = Unicode("http://127.0.0.1:8585/", config=True,
                          help="Where `dsbuild serve` listens (authenticated mode's OAuth callback goes there).")
    public_url = Unicode(None, allow_none=True, config=True, help="How browsers reach the hub. Default: http://IP:PORT/.")
    service_route = Bool(False, config=True,
                         help=f"The hub's proxy routes {SERVICE_PREFIX} to SERVICE_URL (JupyterHub's route for a "
                              f"service with a URL): browsers reach `dsbuild serve --base-url={SERVICE_PREFIX}` on the "
                              "hub's own origin, and its OAuth callback is there. Off: browsers reach SERVICE_URL.")
    cull_timeout = Int(600, config=True, help="Seconds before an idle server is stopped.")
    container_prefix = Unicode("dsbuild", config=True, help="Containers are named PREFIX-<user>.")
    hub_label = Unicode("dsbuild", config=True, help="Value of the io.dsbuild.hub label on the hub's containers.")
    spawner = Enum(SPAWNERS, "docker", config=True,
                   help="docker: containers on this machine; kubernetes: pods on the cluster of the kube config.")
    hub_connect_url = Unicode(None, allow_none=True, config=True,
                              help="Kubernetes: how pods reach the hub, e.g. http://10.0.0.5:8081.")
    launch_image_prefix = Unicode("", config=True, help="Kubernetes: the registry `dsbuild serve` pushes to, HOST:PORT/.")
    proxy_command = Unicode(None, allow_none=True, config=True,
                            help="configurable-http-proxy to run. Default: .run/node's (scripts/setup.sh), or PATH.")
    server_network = Unicode("", config=True,
                             help="Docker network for the servers. Default: PREFIX-servers, made by `hub up`: internal "
                                  "(no internet, no 169.254.169.254) and no traffic between servers. Naming an existing "
                                  "network (e.g. bridge) gives up that isolation.")
    server_firewall = Bool(True, config=True,
                           help="Fence the servers' network on this host with iptables (needs root): a server reaches "
                                "the hub's API port and nothing else of the host. Off: firewall the bridge yourself "
                                "(docs/security.md).")

    def __init__(self, **kwargs):
        super().__init__(**{k: kwargs.pop(k) for k in ("config", "parent") if k in kwargs})
        apply_settings(self, kwargs, HubError)

    @property
    def network_name(self) -> str:
        return self.server_network or f"{self.container_prefix}-servers"

    @property
    def hub_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/") + "/"
        host = "127.0.0.1" if self.ip in ("0.0.0.0", "") else self.ip
        return f"http://{host}:{self.port}/"

    @property
    def auth(self) -> str:
        return self.authenticator or ("null" if self.mode == "anonymous" else "pam")


class Paths:
    """The files of one hub: all in its state folder for the local hub; on Kubernetes
    (the Helm chart) the secrets are a mounted Secret, the rest the hub's volume."""

    def __init__(self, root: Path, secrets: Path | None = None):
        self.root = root
        secrets = secrets or root
        self.config = root / "jupyterhub_config.py"
        self.db = root / "jupyterhub.sqlite"
        self.cookie_secret = secrets / "cookie_secret"
        self.proxy_token = secrets / "proxy_token"
        self.service_token = secrets / "service_token"
        self.password = secrets / "password"
        self.hub_pid = root / "jupyterhub.pid"
        self.proxy_pid = root / "proxy.pid"
        self.hub_log = root / "jupyterhub.log"
        self.proxy_log = root / "proxy.log"
        self.launch = root / "launch.json"


def default_catalog() -> Catalog:
    import yaml

    return parse_catalog(yaml.safe_load(read_template("local-catalog.yaml.j2")))


def render_hub_config(options: HubOptions, paths: Paths, catalog: Catalog, hub_ip: str, *,
                      proxy_api_url: str | None = None, db_url: str | None = None,
                      kube_settings: dict | None = None) -> str:
    """jupyterhub_config.py for the local hub, or the chart's hub with `proxy_api_url`,
    `db_url` and more KubeLaunchSpawner traits (`kube_settings`) (pure). Values are
    Python literals."""
    lit = python_literal
    anonymous = options.mode == "anonymous"
    culler = [f"--timeout={options.cull_timeout}", "--cull-every=60"] + (["--cull-users=true"] if anonymous else [])
    known = options.auth in AUTHENTICATORS
    return render_config(
        "jupyterhub_config.py.j2",
        mode=options.mode, spawner=options.spawner,
        bind_url=lit(f"http://{options.ip}:{options.port}/"),
        hub_bind_url=lit(f"http://{hub_ip}:{options.hub_port}"),
        hub_connect_url=lit(options.hub_connect_url) if options.hub_connect_url else None,
        proxy_api_url=lit(proxy_api_url or f"http://127.0.0.1:{options.proxy_api_port}"),
        proxy_token_file=lit(str(paths.proxy_token)),
        db_url=lit(db_url or f"sqlite:///{paths.db}"),
        cookie_secret_file=lit(str(paths.cookie_secret)),
        authenticator=options.auth if known else "custom",
        authenticator_literal=lit(options.auth),
        password_file=lit(str(paths.password)),
        admin_users=lit(list(options.admin_users)) if options.admin_users else None,
        container_prefix=lit(options.container_prefix), hub_label=lit(options.hub_label),
        network_name=lit(options.network_name),
        token_in_url=lit(anonymous),
        launch_image_prefix=lit(options.launch_image_prefix),
        catalog_literal=python_literal(catalog_data(catalog)),
        service_name=lit(SERVICE_NAME), service_token_file=lit(str(paths.service_token)),
        service_route_url=lit(options.service_url.rstrip("/")) if options.service_route else None,
        oauth_redirect_uri=lit(oauth_redirect(options)) if not anonymous else None,
        oauth_client_id=lit("service-dsbuild"),
        access_scope=lit(f"access:services!service={SERVICE_NAME}"),
        culler_args=lit(culler),
        kube_settings=[(name, python_literal(value, 4)) for name, value in sorted((kube_settings or {}).items())
                       if name.isidentifier()],
    )


def oauth_redirect(options: HubOptions) -> str:
    """The launch service's OAuth callback, as the hub registers it and the service asks for
    it: a path on the hub's origin when the proxy routes the service (`service_route`)."""
    if options.service_route:
        return SERVICE_PREFIX + "oauth_callback"
    return options.service_url.rstrip("/") + "/oauth_callback"


def launch_settings(options: HubOptions, paths: Paths) -> dict:
    """What `dsbuild serve` reads from launch.json."""
    anonymous = options.mode == "anonymous"
    return {
        "hub_url": options.hub_url,
        "hub_api_url": options.hub_url + "hub/api/",
        "token_file": str(paths.service_token.resolve()),
        "mode": options.mode,
        "service_url": options.service_url,
        "oauth_redirect_url": None if anonymous else oauth_redirect(options),
        "registry": options.launch_image_prefix.rstrip("/") or None,
        "hub_label": options.hub_label if options.spawner == "docker" else None,
        "server_network": options.network_name if options.spawner == "docker" and not options.server_network else None,
        "firewall_chain": firewall_chain(options),
        "spawner": options.spawner,
    }


def firewall_chain(options: HubOptions) -> str | None:
    """The iptables chain that fences the servers' network, when `hub up` makes one."""
    from .firewall import chain_name

    fenced = options.spawner == "docker" and not options.server_network and options.server_firewall
    return chain_name(options.network_name) if fenced else None


def check_options(options: HubOptions, launch: bool = True) -> None:
    """Refuse settings that cannot work together; the messages name the options. Without
    the launch service (`launch`, the chart's launch.enabled) a registry is not needed."""
    if options.spawner == "kubernetes" and not (options.hub_connect_url and (options.launch_image_prefix or not launch)):
        raise HubError("--spawner kubernetes needs --hub-connect-url (how pods reach the hub) and --registry")
    if options.mode == "anonymous" and options.auth != "null":
        raise HubError("anonymous mode has no logins; leave --authenticator out")
    for port in (options.port, options.proxy_api_port, options.hub_port):
        if not 0 < port < 65536:
            raise HubError(f"port {port} is not between 1 and 65535")
