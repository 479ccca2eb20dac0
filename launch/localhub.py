"""`dsbuild hub up` / `hub down`: a JupyterHub and configurable-http-proxy on this machine.
This module supervises the processes; what they are configured with is hubconfig.py.

Everything lives in one state folder (default .run/hub/): the generated
jupyterhub_config.py, the secrets (0600), the hub's database, logs, pid files, and
launch.json, which tells `dsbuild serve` where the hub is and which token to use.
The proxy is started first, then the hub; `hub down` stops the hub (which stops its
servers), the proxy, and removes any container left with this hub's label."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.names import HUB_LABEL
from dsbuild.spawner.catalog import load_catalog

from .errors import HubError
from . import firewall
from .hubconfig import HubOptions, Paths, check_options, default_catalog, firewall_chain, launch_settings, render_hub_config
from .servernet import ensure_server_network, gateway, remove_server_network, remove_volumes

PROXY_NAMES = ("configurable-http-proxy",)
Say = Callable[[str], None]


# -- processes -----------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _ours(pid: int, names: tuple[str, ...]) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(name in cmdline for name in names)


def running_pid(pid_file: Path, names: tuple[str, ...]) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and _ours(pid, names) else None


def _start(argv: list[str], log_file: Path, pid_file: Path, cwd: Path, env: dict[str, str]) -> int:
    with open(log_file, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=cwd, env=env, start_new_session=True)
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def _stop(pid_file: Path, names: tuple[str, ...], timeout: float) -> int | None:
    pid = running_pid(pid_file, names)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return pid


def _last_lines(log_file: Path, n: int = 3) -> str:
    try:
        lines = [line for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(lines[-n:]) or "(empty log)"


def _port_free(ip: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def _wait(check: Callable[[], bool], pid: int, what: str, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not _alive(pid):
            raise HubError(f"{what} exited at start; its log ({log_file}) ends: {_last_lines(log_file)}")
        time.sleep(0.25)
    raise HubError(f"{what} did not answer within {timeout:.0f}s; see {log_file}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _connects(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- set-up --------------------------------------------------------------------


def find_proxy(configured: str | None = None) -> str:
    """configurable-http-proxy: --proxy-command, else the project's .run/node (scripts/setup.sh
    installs it there), else the PATH."""
    if configured:
        return configured
    source_root = Path(__file__).resolve().parent.parent
    for root in (Path.cwd(), source_root):
        candidate = root / ".run" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise HubError("configurable-http-proxy is not installed; scripts/setup.sh installs it into .run/node")
    return found


def bridge_ip(engine: DockerEngine) -> str:
    """The docker bridge's gateway: the host's address as containers on `bridge` see it."""
    found = gateway(engine, "bridge")
    if not found:
        raise HubError("cannot find the Docker bridge's address (is dockerd running?); pass --hub-ip")
    return found


def _secret_file(path: Path, value: str | None = None) -> None:
    """Write a secret once (0600); later runs keep it, so tokens stay valid."""
    if path.exists() and value is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write((value if value is not None else secrets.token_hex(32)) + "\n")


def write_state(options: HubOptions, password: str | None = None, servers_gateway: str | None = None) -> tuple[Paths, str]:
    """Create the state folder, its secrets and configuration; returns (paths, hub ip).
    `servers_gateway`: the servers' network's address on the host, where the hub's API listens."""
    check_options(options)
    catalog = load_catalog(options.catalog_file) if options.catalog_file else default_catalog()
    hub_ip = options.hub_ip or servers_gateway or (bridge_ip(DockerEngine()) if options.spawner == "docker" else "0.0.0.0")
    paths = Paths(options.state_dir.resolve())
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)
    for secret in (paths.cookie_secret, paths.proxy_token, paths.service_token):
        _secret_file(secret)
    if options.auth == "dummy":
        _secret_file(paths.password, password)
    text = render_hub_config(options, paths, catalog, hub_ip)
    _secret_file(paths.config, text.rstrip("\n"))
    paths.launch.write_text(json.dumps(launch_settings(options, paths), indent=2) + "\n")
    return paths, hub_ip


def hub_up(options: HubOptions, say: Say, password: str | None = None, timeout: float = 90) -> Paths:
    paths = Paths(options.state_dir.resolve())
    if running_pid(paths.hub_pid, ("jupyterhub",)):
        say(f"JupyterHub is already running at {options.hub_url} (state: {paths.root}); `dsbuild hub down` stops it")
        return paths
    missing = [m for m in ("dockerspawner", "jupyterhub_idle_culler") if importlib.util.find_spec(m) is None]
    if missing and options.spawner == "docker":
        raise HubError(f"{', '.join(missing)} is not installed: pip install \"dsbuild[launch]\"")
    servers_gateway = None
    if options.spawner == "docker":
        engine = DockerEngine()
        servers_gateway = (ensure_server_network(engine, options.network_name, options.hub_label)
                           if not options.server_network else gateway(engine, options.server_network))
    paths, hub_ip = write_state(options, password, servers_gateway)
    _fence(options, hub_ip, say)
    proxy = find_proxy(options.proxy_command)
    _stop(paths.proxy_pid, PROXY_NAMES, 5)  # a proxy left behind by a hub that died (its servers may run on)
    for ip, port in ((options.ip, options.port), ("127.0.0.1", options.proxy_api_port), (hub_ip, options.hub_port)):
        if not _port_free(ip, port):
            raise HubError(f"port {ip}:{port} is in use; stop what uses it or choose another port")
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": paths.proxy_token.read_text().strip()}
    say(f"starting configurable-http-proxy on {options.ip}:{options.port} (log: {paths.proxy_log})")
    proxy_pid = _start(
        [proxy, "--ip", options.ip, "--port", str(options.port), "--api-ip", "127.0.0.1",
         "--api-port", str(options.proxy_api_port), "--default-target", f"http://{hub_ip}:{options.hub_port}",
         "--error-target", f"http://{hub_ip}:{options.hub_port}/hub/error"],
        paths.proxy_log, paths.proxy_pid, paths.root, env,
    )
    try:
        _wait(lambda: _connects(options.proxy_api_port), proxy_pid, "configurable-http-proxy", paths.proxy_log, 30)
        say(f"starting JupyterHub, API on {hub_ip}:{options.hub_port} (log: {paths.hub_log})")
        hub_pid = _start([sys.executable, "-m", "jupyterhub", "-f", str(paths.config)],
                         paths.hub_log, paths.hub_pid, paths.root, env)
        _wait(lambda: _answers(options.hub_url + "hub/api/"), hub_pid, "JupyterHub", paths.hub_log, timeout)
    except BaseException:
        _stop(paths.hub_pid, ("jupyterhub",), 10)
        _stop(paths.proxy_pid, PROXY_NAMES, 5)
        if firewall_chain(options):
            firewall.remove(firewall_chain(options))
        raise
    say(f"JupyterHub is up at {options.hub_url} ({options.mode} mode); now run `dsbuild serve`")
    return paths


def _fence(options: HubOptions, hub_ip: str, say: Say) -> None:
    """Servers reach the hub's API port on the host, nothing else of it (firewall.py)."""
    chain = firewall_chain(options)
    if chain is None:
        return
    fence = firewall.ServerFirewall(chain, firewall.bridge_of(hub_ip), hub_ip, options.hub_port)
    try:
        firewall.apply(fence)
    except HubError as err:
        raise HubError(f"cannot fence the servers' network: {err}; run `hub up` as root, or pass --no-server-firewall "
                       "and firewall the bridge yourself (docs/security.md)") from None
    say(f"servers on {options.network_name} ({fence.bridge}) reach only {hub_ip}:{options.hub_port} on this host")


def remove_containers(engine: DockerEngine, hub_label: str) -> list[str]:
    """Remove the containers this hub's spawner started (its label says so)."""
    ids = engine.containers_labelled(HUB_LABEL, hub_label)
    for container in ids:
        engine.remove_container(container)
    return ids


def _settings(paths: Paths) -> dict:
    try:
        return json.loads(paths.launch.read_text())
    except (OSError, ValueError):
        return {}


def _stop_kubernetes_servers(paths: Paths, settings: dict, say: Say) -> str | None:
    """A hub on Kubernetes: its pods outlive it (cleanup_servers is off, so servers survive
    a restart of the hub), so `hub down` stops them through the hub first, and removes the
    temporary users with their volumes."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from .hubapi import HubClient
    from .spawning import TEMPORARY_USER_PREFIX
    from .stopping import stop_every_server

    if settings.get("spawner") != "kubernetes" or not running_pid(paths.hub_pid, ("jupyterhub",)):
        return None
    try:
        hub = HubClient(settings["hub_api_url"], Path(settings["token_file"]).read_text().strip())
        # A loop of its own in a thread of its own: hub_down may be called from code that
        # runs an event loop already (a notebook, Playwright's sync API, a service).
        with ThreadPoolExecutor(1) as pool:
            temporary, stopped = pool.submit(asyncio.run, stop_every_server(hub, TEMPORARY_USER_PREFIX)).result()
    except Exception as err:  # noqa: BLE001 -- the hub is stopped regardless; say what may be left
        return (f"could not stop the hub's servers on Kubernetes ({err}); their pods may be left: "
                "delete them with kubectl (label component=singleuser-server)")
    say(f"stopped {stopped} server(s) and removed {len(temporary)} temporary user(s) with their volumes")
    return None


def hub_down(state_dir: Path, say: Say, timeout: float = 60) -> None:
    """Stop the hub's servers (Kubernetes: through the hub; Docker: the hub's containers
    are removed by label after it stops), the hub, then the proxy."""
    paths = Paths(state_dir.resolve())
    unstopped = _stop_kubernetes_servers(paths, _settings(paths), say)
    hub = _stop(paths.hub_pid, ("jupyterhub",), timeout)
    say(f"stopped JupyterHub ({hub})" if hub else "JupyterHub was not running")
    proxy = _stop(paths.proxy_pid, PROXY_NAMES, 10)
    say(f"stopped configurable-http-proxy ({proxy})" if proxy else "configurable-http-proxy was not running")
    settings = _settings(paths)
    label = settings.get("hub_label")
    if label:
        engine = DockerEngine()
        left = remove_containers(engine, label)
        if left:
            say(f"removed {len(left)} server container(s) the hub left behind")
        volumes = remove_volumes(engine, label)
        if volumes:
            say(f"removed {len(volumes)} home volume(s) of users the hub did not delete")
        if settings.get("server_network") and remove_server_network(engine, settings["server_network"], label):
            say(f"removed the servers' network {settings['server_network']}")
    if settings.get("firewall_chain") and firewall.remove(settings["firewall_chain"]):
        say(f"removed the servers' firewall chain {settings['firewall_chain']}")
    if unstopped:
        raise HubError(unstopped)


def hub_status(state_dir: Path) -> dict:
    paths = Paths(state_dir.resolve())
    settings = _settings(paths)
    return {
        "hub_pid": running_pid(paths.hub_pid, ("jupyterhub",)),
        "proxy_pid": running_pid(paths.proxy_pid, PROXY_NAMES),
        "hub_url": settings.get("hub_url"),
        "mode": settings.get("mode"),
        "state_dir": str(paths.root),
    }
