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

from .config import ConfigInvalid, LaunchConfig, parse_cidrs, parse_rate, parse_size
from .localhub import (
    AUTHENTICATORS,
    DEFAULT_STATE,
    SPAWNERS,
    HubOptions,
    hub_down,
    hub_status,
    hub_up,
)
from .routes import KNOWN_SCHEMES


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


def _user_options(pairs: tuple[str, ...]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigInvalid(f"--user-option wants KEY=VALUE (e.g. cpu=2), got {pair!r}")
        options[key] = value
    return options


def build_config(state_dir, hub_url, hub_api_url, hub_token_file, mode, base_url, public_url, allow_scheme,
                 max_builds, per_repo_limit, max_repo_size, image_prefix, registry, user_option,
                 oauth_redirect_url, start_timeout, max_servers=20, max_starting=20, launch_rate="10/hour",
                 trusted_proxy=(), allow_host_network=()) -> LaunchConfig:
    state = _state(state_dir)
    hub_url = hub_url or state.get("hub_url")
    if not hub_url:
        raise ConfigInvalid(f"no hub: run `dsbuild hub up` (it writes {state_dir}/launch.json) or pass --hub-url")
    return LaunchConfig(
        hub_url=hub_url,
        hub_api_url=hub_api_url or state.get("hub_api_url") or hub_url.rstrip("/") + "/hub/api/",
        hub_token=_token(hub_token_file, state),
        mode=mode or state.get("mode") or "anonymous",
        base_url=base_url,
        public_url=public_url,
        allowed_schemes=tuple(allow_scheme) or ("https",),
        max_builds=max_builds,
        per_repo_limit=per_repo_limit,
        max_repo_size=parse_size(max_repo_size, "--max-repo-size"),
        image_prefix=image_prefix,
        registry=registry or state.get("registry"),
        user_options=_user_options(user_option),
        oauth_redirect_url=oauth_redirect_url or state.get("oauth_redirect_url"),
        start_timeout=start_timeout,
        max_servers=max_servers,
        max_starting=max_starting,
        launch_rate=parse_rate(launch_rate, "--launch-rate"),
        trusted_proxies=parse_cidrs(trusted_proxy, "--trusted-proxy"),
        allowed_host_networks=parse_cidrs(allow_host_network, "--allow-host-network"),
    )


async def _serve(config: LaunchConfig, ip: str, port: int) -> None:
    from .app import make_app
    from .hubapi import HubClient

    app = make_app(config)
    launcher = app.settings["launcher"]
    server = app.listen(port, ip, xheaders=False)  # X-Forwarded-For: only from --trusted-proxy (limits.py)
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
    await launcher.remover.drain(30)  # temporary users of streams that just closed


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
@click.option("--hub-url", help="Where browsers reach JupyterHub, e.g. http://127.0.0.1:8000/. Default: from --hub-state.")
@click.option("--hub-api-url", envvar="JUPYTERHUB_API_URL", help="Where this service reaches the hub's REST API.")
@click.option("--hub-token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the service's API token. Default: from --hub-state, else $JUPYTERHUB_API_TOKEN.")
@click.option("--mode", type=click.Choice(["anonymous", "authenticated"]),
              help="anonymous: a temporary user per launch (like mybinder.org); authenticated: the logged-in "
                   "user's named server. Default: the hub's mode.")
@click.option("--base-url", envvar="JUPYTERHUB_SERVICE_PREFIX", default="/", show_default=True,
              help="URL prefix of this service (set by JupyterHub for a managed service).")
@click.option("--public-url", help="This service's public URL, for links and badges. Default: from each request.")
@click.option("--allow-scheme", multiple=True, type=click.Choice(KNOWN_SCHEMES),
              help="Git URL schemes /v2/git/ accepts; repeatable. Default: https. file:// lets anyone who "
                   "can open a link build any repository on this machine.")
@click.option("--max-builds", default=2, show_default=True, help="Builds that may run at once.")
@click.option("--per-repo-limit", default=10, show_default=True,
              help="Running or starting servers per repository; 0 for no limit.")
@click.option("--max-repo-size", default="500Mi", show_default=True,
              help="Largest repository (bytes of files at the commit) that is built; 0 for no limit.")
@click.option("--max-servers", default=20, show_default=True,
              help="Running or starting servers on the hub, all users together; 0 for no limit. "
                   "A launch beyond it gets 503 and starts nothing.")
@click.option("--max-starting", default=20, show_default=True,
              help="Launches in progress at once (checking, building, starting); more get 503.")
@click.option("--launch-rate", default="10/hour", show_default=True, metavar="COUNT/UNIT",
              help="Launches one client may start (UNIT: second, minute, hour, day); 0 for no limit. "
                   "A client is its IPv4 address or IPv6 /64.")
@click.option("--trusted-proxy", multiple=True, metavar="CIDR",
              help="A reverse proxy in front of this service; repeatable. Only connections from these "
                   "have X-Forwarded-For read to find the client. Default: none (the peer address counts).")
@click.option("--allow-host-network", multiple=True, metavar="CIDR",
              help="Let git fetch from hosts in this loopback, private or link-local network "
                   "(refused by default); repeatable, e.g. 10.0.0.0/8 for an internal git server.")
@click.option("--image-prefix", default="dsbuild", show_default=True, help="Images are named PREFIX-<repo>:<commit>.")
@click.option("--registry", metavar="HOST:PORT", help="Push images there (for a hub on Kubernetes).")
@click.option("--user-option", multiple=True, metavar="KEY=VALUE",
              help="A catalog choice sent with every launch, e.g. cpu=2 or memory=4Gi; repeatable.")
@click.option("--oauth-redirect-url", envvar="JUPYTERHUB_OAUTH_CALLBACK_URL",
              help="Authenticated mode: this service's /oauth_callback URL as the hub knows it.")
@click.option("--start-timeout", default=180.0, show_default=True, help="Seconds to wait for a server to start.")
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
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True,
              help="Configuration, secrets, database, logs and pid files.")
@click.option("--ip", default="127.0.0.1", show_default=True, help="Where the hub's proxy listens (0.0.0.0: everywhere).")
@click.option("--port", default=8000, show_default=True, help="The hub's public port.")
@click.option("--proxy-api-port", default=8001, show_default=True, help="configurable-http-proxy's API port (127.0.0.1).")
@click.option("--hub-ip", help="Where the hub's API listens; containers reach it there. Default: the servers' "
                               "network's address on this machine.")
@click.option("--hub-port", default=8081, show_default=True)
@click.option("--mode", type=click.Choice(["anonymous", "authenticated"]), default="anonymous", show_default=True,
              help="anonymous: no logins, temporary users culled when idle; authenticated: users log in.")
@click.option("--authenticator", help=f"Authenticated mode: {', '.join(AUTHENTICATORS[1:])} or a class name. "
                                      "Default: pam. dummy's shared password comes from $DSBUILD_HUB_PASSWORD.")
@click.option("--admin-user", multiple=True, help="A hub admin; repeatable.")
@click.option("--catalog", "catalog_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Resource catalog (docs/spawner.md). Default: a small local one (1-2 CPUs, 2-4 GiB).")
@click.option("--service-url", default="http://127.0.0.1:8585/", show_default=True,
              help="Where `dsbuild serve` listens (authenticated mode's OAuth callback goes there).")
@click.option("--public-url", help="How browsers reach the hub. Default: http://IP:PORT/.")
@click.option("--cull-timeout", default=600, show_default=True, help="Seconds before an idle server is stopped.")
@click.option("--container-prefix", default="dsbuild", show_default=True, help="Containers are named PREFIX-<user>.")
@click.option("--spawner", type=click.Choice(SPAWNERS), default="docker", show_default=True,
              help="docker: containers on this machine; kubernetes: pods on the cluster of the kube config.")
@click.option("--hub-connect-url", help="Kubernetes: how pods reach the hub, e.g. http://10.0.0.5:8081.")
@click.option("--registry", metavar="HOST:PORT", help="Kubernetes: the registry `dsbuild serve --registry` pushes to.")
@click.option("--proxy-command", help="configurable-http-proxy to run. Default: .run/node's (scripts/setup.sh), or PATH.")
@click.option("--server-network", default="", metavar="NAME",
              help="Docker network for the servers. Default: PREFIX-servers, made by this command: internal "
                   "(no internet, no 169.254.169.254) and no traffic between servers. Naming an existing network "
                   "(e.g. bridge) gives up that isolation.")
@user_errors
def up(state_dir, ip, port, proxy_api_port, hub_ip, hub_port, mode, authenticator, admin_user, catalog_file,
       service_url, public_url, cull_timeout, container_prefix, spawner, hub_connect_url, registry, proxy_command,
       server_network):
    """Start a JupyterHub (and its proxy) that launches dsbuild images on this machine.

    Servers are containers on the local Docker engine with the catalog's CPU and memory
    limits. Runs in the background; `dsbuild hub down` stops it. Then `dsbuild serve`.
    """
    if urlsplit(service_url).scheme not in ("http", "https"):
        raise click.BadParameter("must be an http(s) URL", param_hint="--service-url")
    options = HubOptions(
        state_dir=state_dir, ip=ip, port=port, proxy_api_port=proxy_api_port, hub_ip=hub_ip, hub_port=hub_port,
        mode=mode, authenticator=authenticator, admin_users=tuple(admin_user), catalog_file=catalog_file,
        service_url=service_url, public_url=public_url, cull_timeout=cull_timeout,
        container_prefix=container_prefix, hub_label=container_prefix, spawner=spawner,
        hub_connect_url=hub_connect_url, launch_image_prefix=f"{registry}/" if registry else "",
        proxy_command=proxy_command, server_network=server_network,
    )
    hub_up(options, _say, password=os.environ.get("DSBUILD_HUB_PASSWORD"))
    click.echo(options.hub_url)


@click.command("down")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
@user_errors
def down(state_dir):
    """Stop what `dsbuild hub up` started: the hub (and its servers) and the proxy."""
    hub_down(state_dir, _say)


@click.command("status")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
def status(state_dir):
    """Whether the local hub and its proxy run (JSON)."""
    click.echo(json.dumps(hub_status(state_dir), indent=2))
