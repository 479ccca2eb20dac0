"""`dsbuild serve`, `dsbuild hub up`, `dsbuild hub down`, `dsbuild hub status`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

import click
from dsbuild.cli.output import err_console, user_errors
from rich.text import Text

from dsbuild.cli.settings import setting
from dsbuild.spawner.quantities import Memory

from .config import LaunchConfig, parse_pairs, parse_size
from .errors import ConfigInvalid
from .hubconfig import DEFAULT_STATE, HubOptions
from .localhub import hub_down, hub_status, hub_up
from .routes import KNOWN_SCHEMES


def _help(cls, name: str) -> str:
    return " ".join(cls.class_traits()[name].help.split())


def _say(message: str) -> None:
    err_console.print(Text.assemble(("[hub] ", "bold cyan"), message))


def _state(state_dir: Path) -> dict:
    path = state_dir / "launch.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError) as err:
        raise ConfigInvalid(f"cannot read {path}: {err}") from None


def _token(token_file: Path | None, state: dict) -> str:
    if token_file is None and state.get("token_file"):
        token_file = Path(state["token_file"])
    if token_file is not None:
        try:
            return token_file.read_text().strip()
        except OSError as err:
            raise ConfigInvalid(f"cannot read the hub token file {token_file}: {err.strerror}") from None
    return os.environ.get("JUPYTERHUB_API_TOKEN", "")


def build_config(state_dir: Path, hub_token_file: Path | None, user_option: tuple[str, ...], max_repo_size: str,
                 gc_max_disk: str = "50Gi", **settings) -> LaunchConfig:
    """LaunchConfig from the command line; what is not given comes from the hub's state
    folder (launch.json), then from the traits' defaults."""
    state = _state(state_dir)
    hub_url = settings.get("hub_url") or state.get("hub_url")
    if not hub_url:
        raise ConfigInvalid(f"no hub: run `dsbuild hub up` (it writes {state_dir}/launch.json) or pass --hub-url")
    for name in ("hub_api_url", "mode", "registry", "oauth_redirect_url"):
        settings[name] = settings.get(name) or state.get(name)
    if settings.get("rate_state") is None:
        settings["rate_state"] = str(state_dir / "launch-rate.sqlite")
    settings.update(hub_url=hub_url, hub_token=_token(hub_token_file, state),
                    user_options=parse_pairs(user_option, "--user-option"),
                    max_repo_size=parse_size(max_repo_size, "--max-repo-size"),
                    gc_max_disk=parse_size(gc_max_disk, "--gc-max-disk"))
    return LaunchConfig(**{name: value for name, value in settings.items() if value not in (None, ())})


async def _serve(config: LaunchConfig, ip: str, port: int) -> None:
    from .app import make_app
    from .hubapi import HubClient

    app = make_app(config)
    launcher = app.settings["launcher"]
    gc = _garbage_timer(config, launcher.preflight)
    housekeeping = asyncio.create_task(gc.run()) if gc else None
    reaper = asyncio.create_task(launcher.pool.run_reaper()) if launcher.pool.enabled else None
    server = app.listen(port, ip, xheaders=False)  # X-Forwarded-For: only from --trusted-proxy (limits.py)
    if config.build_on == "kubernetes":
        await _ensure_build_daemons(launcher.preflight)
    try:
        info = await HubClient(config.hub_api_url, config.hub_token, timeout=5).info()
        hub = f"JupyterHub {info.get('version', '?')} at {config.hub_url}"
    except Exception as err:  # noqa: BLE001 -- the hub may come up later
        hub = f"JupyterHub at {config.hub_url} does not answer yet ({err})"
    else:
        if config.mode == "anonymous":  # what a killed service left: temporary users no page will hand out
            orphans = await launcher.remover.sweep(config.user_prefix)
            if orphans:
                _log(f"removing {len(orphans)} temporary user(s) left by a previous run")
    _log(f"http://{ip}:{port}{config.base_url} ({config.mode} mode); {hub}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    if housekeeping:
        housekeeping.cancel()
    if reaper:
        reaper.cancel()
    await launcher.pool.close(30)  # every server started in advance goes
    await launcher.remover.drain(30)  # temporary users of streams that just closed


async def _ensure_build_daemons(preflight) -> None:
    """The build daemons (launch/build_daemon.py) are created or updated before the first
    launch; a failure is logged and tried again by the first build."""
    try:
        _log(await asyncio.get_running_loop().run_in_executor(None, preflight.engine.ensure_daemons))
    except Exception as err:  # noqa: BLE001 -- the cluster may come up later
        _log(f"cannot put the build daemons in place yet: {err}")


def _garbage_timer(config: LaunchConfig, preflight):
    """The service's gc on a timer (launch/housekeeping.py), or None with --gc-interval 0."""
    from .housekeeping import GarbageTimer, service_gc_policy

    if not config.gc_interval:
        return None
    policy = service_gc_policy(config.gc_max_age, config.gc_max_disk, config.image_prefix)
    return GarbageTimer(config.gc_interval, preflight.workspace.root, lambda: preflight.engine, policy)


def _log(message: str) -> None:
    err_console.print(Text.assemble(("[serve] ", "bold cyan"), message))


def register(main: click.Group, hub: click.Group) -> None:
    main.add_command(serve)
    hub.add_command(up)
    hub.add_command(down)
    hub.add_command(status)


@click.command()
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8585, show_default=True, help="Port to listen on.")
@click.option("--hub-state", "state_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE,
              show_default=True, help="The folder `dsbuild hub up` wrote; its launch.json gives the hub's URL and token.")
@setting(LaunchConfig, "hub_url", help="Where browsers reach JupyterHub, e.g. http://127.0.0.1:8000/. "
                                        "Default: from --hub-state.")
@setting(LaunchConfig, "hub_api_url", envvar="JUPYTERHUB_API_URL")
@click.option("--hub-token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the service's API token. Default: from --hub-state, else $JUPYTERHUB_API_TOKEN.")
@setting(LaunchConfig, "mode", default=None, help=f"{_help(LaunchConfig, 'mode')} Default: the hub's mode.")
@setting(LaunchConfig, "base_url", envvar="JUPYTERHUB_SERVICE_PREFIX")
@setting(LaunchConfig, "public_url")
@setting(LaunchConfig, "allowed_schemes", "--allow-scheme", type=click.Choice(KNOWN_SCHEMES),
         help=f"{_help(LaunchConfig, 'allowed_schemes')} Repeatable.")
@setting(LaunchConfig, "max_builds")
@setting(LaunchConfig, "per_repo_limit")
@setting(LaunchConfig, "max_repo_size", type=str, show_default=True,
         default=Memory(LaunchConfig.class_traits()["max_repo_size"].default()).k8s())
@setting(LaunchConfig, "max_servers")
@setting(LaunchConfig, "max_starting")
@setting(LaunchConfig, "launch_rate", type=str, default="10/hour", show_default=True, metavar="COUNT/UNIT")
@setting(LaunchConfig, "rate_state", default=None, metavar="FILE")
@setting(LaunchConfig, "trusted_proxies", "--trusted-proxy", type=str, multiple=True, metavar="CIDR",
         help=f"{_help(LaunchConfig, 'trusted_proxies')} Repeatable.")
@setting(LaunchConfig, "allowed_host_networks", "--allow-host-network", type=str, multiple=True, metavar="CIDR",
         help=f"{_help(LaunchConfig, 'allowed_host_networks')} Repeatable.")
@setting(LaunchConfig, "image_prefix")
@setting(LaunchConfig, "max_increments")
@setting(LaunchConfig, "gc_interval")
@setting(LaunchConfig, "gc_max_age")
@setting(LaunchConfig, "gc_max_disk", type=str, show_default=True,
         default=Memory(LaunchConfig.class_traits()["gc_max_disk"].default()).k8s())
@setting(LaunchConfig, "registry", metavar="HOST:PORT")
@click.option("--user-option", multiple=True, metavar="KEY=VALUE",
              help="A catalog choice sent with every launch, e.g. cpu=2 or memory=4Gi; repeatable.")
@setting(LaunchConfig, "oauth_redirect_url", envvar="JUPYTERHUB_OAUTH_CALLBACK_URL")
@setting(LaunchConfig, "start_timeout")
@setting(LaunchConfig, "pool_size")
@setting(LaunchConfig, "pool_per_image")
@setting(LaunchConfig, "pool_idle_timeout")
@setting(LaunchConfig, "build_on")
@setting(LaunchConfig, "build_image", metavar="IMAGE")
@setting(LaunchConfig, "build_namespace")
@setting(LaunchConfig, "build_cpu")
@setting(LaunchConfig, "build_memory")
@setting(LaunchConfig, "build_disk")
@setting(LaunchConfig, "build_deadline")
@setting(LaunchConfig, "build_daemon_root", metavar="PATH")
@setting(LaunchConfig, "build_cgroup", metavar="PATH")
@setting(LaunchConfig, "build_registry", metavar="HOST:PORT")
@setting(LaunchConfig, "build_host_network", is_flag=True)
@setting(LaunchConfig, "build_node_selector", metavar="KEY=VALUE",
         help=f"{_help(LaunchConfig, 'build_node_selector')} Repeatable.")
@setting(LaunchConfig, "build_tolerations", "--build-toleration", metavar="KEY=VALUE:EFFECT",
         help=f"{_help(LaunchConfig, 'build_tolerations')} Repeatable.")
@setting(LaunchConfig, "kubeconfig", type=click.Path(dir_okay=False))
@user_errors
def serve(ip, port, state_dir, **kw):
    """Serve launch links: build a repository and open it in JupyterLab on JupyterHub.

    \b
    With a local hub:
      dsbuild hub up
      dsbuild serve                     # http://127.0.0.1:8585/
    Then open http://127.0.0.1:8585/v2/gh/ORG/REPO/HEAD?labpath=notebook.ipynb
    (mybinder.org's links, with this host). docs/launch.md has the details.
    """
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # imported with JupyterHub's auth helpers
    config = build_config(state_dir, **kw)
    asyncio.run(_serve(config, ip, port))


@click.command("up")
@setting(HubOptions, "state_dir", type=click.Path(file_okay=False, path_type=Path))
@setting(HubOptions, "ip")
@setting(HubOptions, "port")
@setting(HubOptions, "proxy_api_port")
@setting(HubOptions, "hub_ip")
@setting(HubOptions, "hub_port")
@setting(HubOptions, "mode")
@setting(HubOptions, "authenticator")
@setting(HubOptions, "admin_users", "--admin-user", help=f"{_help(HubOptions, 'admin_users')} Repeatable.")
@setting(HubOptions, "catalog_file", "--catalog", type=click.Path(dir_okay=False, path_type=Path))
@setting(HubOptions, "service_url")
@setting(HubOptions, "public_url")
@setting(HubOptions, "cull_timeout")
@setting(HubOptions, "container_prefix", help=f"{_help(HubOptions, 'container_prefix')} Also the io.dsbuild.hub label.")
@setting(HubOptions, "spawner")
@setting(HubOptions, "hub_connect_url")
@click.option("--registry", metavar="HOST:PORT", help="Kubernetes: the registry `dsbuild serve --registry` pushes to.")
@setting(HubOptions, "proxy_command")
@setting(HubOptions, "server_network", metavar="NAME")
@setting(HubOptions, "server_firewall", "--server-firewall/--no-server-firewall", is_flag=True, show_default=True)
@user_errors
def up(registry, **settings):
    """Start a JupyterHub (and its proxy) that launches dsbuild images on this machine.

    Servers are containers on the local Docker engine with the catalog's CPU and memory
    limits. Runs in the background; `dsbuild hub down` stops it. Then `dsbuild serve`.
    """
    if urlsplit(settings["service_url"]).scheme not in ("http", "https"):
        raise click.BadParameter("must be an http(s) URL", param_hint="--service-url")
    given = {name: value for name, value in settings.items() if value is not None}
    options = HubOptions(**given, hub_label=settings["container_prefix"],
                         launch_image_prefix=f"{registry}/" if registry else "")
    hub_up(options, _say, password=os.environ.get("DSBUILD_HUB_PASSWORD"))
    click.echo(options.hub_url)


@click.command("down")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
@user_errors
def down(state_dir):
    """Stop what `dsbuild hub up` started: the hub's servers, the hub and the proxy.

    Docker: the hub's containers, home volumes, network and firewall chain are removed.
    Kubernetes: every server is stopped through the hub first and temporary users are
    deleted with their home volumes; regular users' home volumes stay.
    """
    hub_down(state_dir, _say)


@click.command("status")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
def status(state_dir):
    """Whether the local hub and its proxy run (JSON)."""
    click.echo(json.dumps(hub_status(state_dir), indent=2))
