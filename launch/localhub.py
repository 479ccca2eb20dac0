"""`dsbuild hub up` / `hub down`: a JupyterHub and configurable-http-proxy on this machine.

Everything lives in one state folder (default .run/hub/): the generated
jupyterhub_config.py, the secrets (0600), the hub's database, logs, pid files, and
launch.json, which tells `dsbuild serve` where the hub is and which token to use.
The proxy is started first, then the hub; `hub down` stops the hub (which stops its
servers), the proxy, and removes any container left with this hub's label."""

from __future__ import annotations

import importlib.util
import ipaddress
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
from dataclasses import dataclass
from pathlib import Path

from dsbuild.builder.engine import find_docker_cli
from dsbuild.builder.errors import DsbuildError
from dsbuild.spawner.catalog import Catalog, load_catalog, parse_catalog
from dsbuild.spawner.hub_config import catalog_data, python_literal

from .servernet import ensure_server_network, remove_server_network, remove_volumes
from .servernet import gateway as network_gateway
from .templating import read_template, render_config

DEFAULT_STATE = Path(".run/hub")
AUTHENTICATORS = ("null", "dummy", "pam")
SPAWNERS = ("docker", "kubernetes")
PROXY_NAMES = ("configurable-http-proxy",)
Say = Callable[[str], None]


class HubError(DsbuildError):
    """`hub up` or `hub down` could not do its job; the message says why."""

    exit_code = 7


@dataclass(frozen=True)
class HubOptions:
    state_dir: Path = DEFAULT_STATE
    ip: str = "127.0.0.1"  # where the proxy listens (the hub's public address)
    port: int = 8000
    proxy_api_port: int = 8001
    hub_ip: str | None = None  # default: the servers' network's gateway address (docker), else 0.0.0.0
    hub_port: int = 8081
    mode: str = "anonymous"
    authenticator: str | None = None  # default: null (anonymous) or pam (authenticated)
    admin_users: tuple[str, ...] = ()
    catalog_file: Path | None = None
    service_url: str = "http://127.0.0.1:8585/"  # where `dsbuild serve` listens
    public_url: str | None = None  # how browsers reach the proxy; default from ip and port
    cull_timeout: int = 600
    container_prefix: str = "dsbuild"
    hub_label: str = "dsbuild"
    spawner: str = "docker"
    hub_connect_url: str | None = None  # kubernetes: how pods reach the hub
    launch_image_prefix: str = ""  # kubernetes: the registry serve pushes to, "HOST:PORT/"
    proxy_command: str | None = None
    server_network: str = ""  # docker: "" is an isolated network made for this hub (servernet.py)

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
    """The files of one local hub, all in its state folder."""

    def __init__(self, root: Path):
        self.root = root
        self.config = root / "jupyterhub_config.py"
        self.db = root / "jupyterhub.sqlite"
        self.cookie_secret = root / "cookie_secret"
        self.proxy_token = root / "proxy_token"
        self.service_token = root / "service_token"
        self.password = root / "password"
        self.hub_pid = root / "jupyterhub.pid"
        self.proxy_pid = root / "proxy.pid"
        self.hub_log = root / "jupyterhub.log"
        self.proxy_log = root / "proxy.log"
        self.launch = root / "launch.json"


def default_catalog() -> Catalog:
    import yaml

    return parse_catalog(yaml.safe_load(read_template("local-catalog.yaml.j2")))


def render_hub_config(options: HubOptions, paths: Paths, catalog: Catalog, hub_ip: str) -> str:
    """jupyterhub_config.py for the local hub (pure). Values are Python literals."""
    lit = python_literal
    anonymous = options.mode == "anonymous"
    culler = [f"--timeout={options.cull_timeout}", "--cull-every=60"] + (["--cull-users=true"] if anonymous else [])
    redirect = None if anonymous else options.service_url.rstrip("/") + "/oauth_callback"
    known = options.auth in AUTHENTICATORS
    return render_config(
        "jupyterhub_config.py.j2",
        mode=options.mode, spawner=options.spawner,
        bind_url=lit(f"http://{options.ip}:{options.port}/"),
        hub_bind_url=lit(f"http://{hub_ip}:{options.hub_port}"),
        hub_connect_url=lit(options.hub_connect_url) if options.hub_connect_url else None,
        proxy_api_url=lit(f"http://127.0.0.1:{options.proxy_api_port}"),
        proxy_token_file=lit(str(paths.proxy_token)),
        db_url=lit(f"sqlite:///{paths.db}"),
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
        service_name=lit("dsbuild"), service_token_file=lit(str(paths.service_token)),
        oauth_redirect_uri=lit(redirect) if redirect else None,
        oauth_client_id=lit("service-dsbuild"),
        access_scope=lit("access:services!service=dsbuild"),
        culler_args=lit(culler),
    )


def launch_settings(options: HubOptions, paths: Paths) -> dict:
    """What `dsbuild serve` reads from launch.json."""
    anonymous = options.mode == "anonymous"
    return {
        "hub_url": options.hub_url,
        "hub_api_url": options.hub_url + "hub/api/",
        "token_file": str(paths.service_token.resolve()),
        "mode": options.mode,
        "service_url": options.service_url,
        "oauth_redirect_url": None if anonymous else options.service_url.rstrip("/") + "/oauth_callback",
        "registry": options.launch_image_prefix.rstrip("/") or None,
        "hub_label": options.hub_label if options.spawner == "docker" else None,
        "server_network": options.network_name if options.spawner == "docker" and not options.server_network else None,
    }


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


def bridge_ip() -> str:
    """The docker bridge's gateway: the host's address as containers on `bridge` see it
    (the IPAM gateway, else the first address of the subnet, which dockerd gives docker0)."""
    done = subprocess.run([find_docker_cli(), "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
                          capture_output=True, text=True, timeout=30)
    try:
        configs = json.loads(done.stdout) if done.returncode == 0 else []
    except ValueError:
        configs = []
    for config in configs or []:
        try:
            if config.get("Gateway"):
                return str(ipaddress.IPv4Address(config["Gateway"]))
            if config.get("Subnet"):
                return str(next(ipaddress.IPv4Network(config["Subnet"]).hosts()))
        except ValueError:
            continue
    raise HubError("cannot find the Docker bridge's address (is dockerd running?); pass --hub-ip")


def _secret_file(path: Path, value: str | None = None) -> None:
    """Write a secret once (0600); later runs keep it, so tokens stay valid."""
    if path.exists() and value is None:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write((value if value is not None else secrets.token_hex(32)) + "\n")


def _check_options(options: HubOptions) -> None:
    if options.mode not in ("anonymous", "authenticated"):
        raise HubError(f"--mode must be anonymous or authenticated, got {options.mode!r}")
    if options.spawner not in SPAWNERS:
        raise HubError(f"--spawner must be one of {', '.join(SPAWNERS)}, got {options.spawner!r}")
    if options.spawner == "kubernetes" and not (options.hub_connect_url and options.launch_image_prefix):
        raise HubError("--spawner kubernetes needs --hub-connect-url (how pods reach the hub) and --registry")
    if options.mode == "anonymous" and options.auth != "null":
        raise HubError("anonymous mode has no logins; leave --authenticator out")
    for port in (options.port, options.proxy_api_port, options.hub_port):
        if not 0 < port < 65536:
            raise HubError(f"port {port} is not between 1 and 65535")


def write_state(options: HubOptions, password: str | None = None, gateway: str | None = None) -> tuple[Paths, str]:
    """Create the state folder, its secrets and configuration; returns (paths, hub ip).
    `gateway`: the servers' network's address on the host, where the hub's API listens."""
    _check_options(options)
    catalog = load_catalog(options.catalog_file) if options.catalog_file else default_catalog()
    hub_ip = options.hub_ip or gateway or (bridge_ip() if options.spawner == "docker" else "0.0.0.0")
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
    gateway = None
    if options.spawner == "docker":
        gateway = (ensure_server_network(options.network_name, options.hub_label) if not options.server_network
                   else network_gateway(options.server_network))
    paths, hub_ip = write_state(options, password, gateway)
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
        raise
    say(f"JupyterHub is up at {options.hub_url} ({options.mode} mode); now run `dsbuild serve`")
    return paths


def remove_containers(hub_label: str) -> list[str]:
    cli = find_docker_cli()
    done = subprocess.run([cli, "ps", "-aq", "--filter", f"label=io.dsbuild.hub={hub_label}"],
                          capture_output=True, text=True, timeout=60)
    ids = done.stdout.split()
    if ids:
        subprocess.run([cli, "rm", "-f", *ids], capture_output=True, timeout=120)
    return ids


def _settings(paths: Paths) -> dict:
    try:
        return json.loads(paths.launch.read_text())
    except (OSError, ValueError):
        return {}


def hub_down(state_dir: Path, say: Say, timeout: float = 60) -> None:
    """Stop the hub (it stops its servers), then the proxy; remove leftover containers."""
    paths = Paths(state_dir.resolve())
    hub = _stop(paths.hub_pid, ("jupyterhub",), timeout)
    say(f"stopped JupyterHub ({hub})" if hub else "JupyterHub was not running")
    proxy = _stop(paths.proxy_pid, PROXY_NAMES, 10)
    say(f"stopped configurable-http-proxy ({proxy})" if proxy else "configurable-http-proxy was not running")
    settings = _settings(paths)
    label = settings.get("hub_label")
    if label:
        left = remove_containers(label)
        if left:
            say(f"removed {len(left)} server container(s) the hub left behind")
        volumes = remove_volumes(label)
        if volumes:
            say(f"removed {len(volumes)} home volume(s) of users the hub did not delete")
        if settings.get("server_network") and remove_server_network(settings["server_network"], label):
            say(f"removed the servers' network {settings['server_network']}")


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
