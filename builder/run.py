"""Run a built image: start the container, wait until JupyterLab answers, give the URL."""

from __future__ import annotations

import re
import secrets
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .engine import DockerEngine
from .errors import RunFailed
from .names import RUN_LABEL

_MEMORY = re.compile(r"^\d+(\.\d+)?[bkmgBKMG]?$")
_GPUS = re.compile(r"^(all|\d+|device=[0-9,]+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by dsbuild itself: --env may not replace them.
_RESERVED_ENV = ("JUPYTER_TOKEN",)
CONTAINER_PORT = 8888
RUN_PIDS_LIMIT = 1024
# No privilege gain through setuid files, no capabilities, bounded processes; the user is
# RunOptions.user (never root), also for a repository's own Dockerfile, whatever its USER says.
SECURITY_OPTS = ("no-new-privileges",)
CAP_DROP = ("ALL",)
HARDENING = ("--security-opt", *SECURITY_OPTS, "--cap-drop", *CAP_DROP, "--pids-limit", str(RUN_PIDS_LIMIT))
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class Volume:
    host: Path
    container: str
    read_only: bool = False

    @classmethod
    def parse(cls, text: str) -> "Volume":
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise RunFailed(f"--volume wants HOST_PATH:CONTAINER_PATH[:ro], got {text!r}")
        host = Path(parts[0]).expanduser().resolve()
        if not host.exists():
            raise RunFailed(f"--volume: {host} does not exist")
        if not parts[1].startswith("/"):
            raise RunFailed(f"--volume: the container path must be absolute, got {parts[1]!r}")
        return cls(host, parts[1], len(parts) == 3 and parts[2] == "ro")

    @property
    def arg(self) -> str:
        return f"{self.host}:{self.container}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class RunOptions:
    port: int | None = None  # host port; None picks a free one
    volumes: tuple[Volume, ...] = ()
    cpus: float | None = None
    memory: str | None = None
    gpus: str | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # --env KEY=VALUE, passed by name (values stay off argv)
    uid: int = 1000  # the notebook user the image was built for (--user-id); never root

    def __post_init__(self) -> None:
        if not 1000 <= self.uid <= 60000:
            raise RunFailed(f"the container's user must be a uid from 1000 to 60000, got {self.uid}")
        if self.port is not None and not 0 < self.port < 65536:
            raise RunFailed(f"--port must be between 1 and 65535, got {self.port}")
        if self.cpus is not None and not 0 < self.cpus <= 1024:
            raise RunFailed(f"--cpus must be a positive number, got {self.cpus}")
        if self.memory is not None and not _MEMORY.match(self.memory):
            raise RunFailed(f"--memory wants a size such as 2g or 512m, got {self.memory!r}")
        if self.gpus is not None and not _GPUS.match(self.gpus):
            raise RunFailed(f"--gpus wants 'all', a count or device=0,1, got {self.gpus!r}")


def parse_env(text: str) -> tuple[str, str]:
    """--env KEY=VALUE -> (KEY, VALUE)."""
    key, sep, value = text.partition("=")
    if not sep or not _ENV_NAME.match(key):
        raise RunFailed(f"--env wants KEY=VALUE with KEY a variable name, got {text[:40]!r}")
    if key in _RESERVED_ENV:
        raise RunFailed(f"--env {key} is set by dsbuild itself")
    return key, value


@dataclass(frozen=True)
class Server:
    container: str
    url: str  # with the token
    api: str  # base URL of the server
    token: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_run_args(image: str, options: RunOptions, port: int | None) -> list[str]:
    """Arguments for `docker run` (pure); without a port, nothing is published (a command)."""
    args = ["--init", "--label", f"{RUN_LABEL}=1", "--user", f"{options.uid}:{options.uid}", *HARDENING]
    if port is not None:
        args += ["--publish", f"127.0.0.1:{port}:{CONTAINER_PORT}"]
        args += ["--env", "JUPYTER_TOKEN"]  # the value comes from the environment, not argv
    for key, _ in options.env:
        args += ["--env", key]
    for volume in options.volumes:
        args += ["--volume", volume.arg]
    if options.cpus is not None:
        args += ["--cpus", str(options.cpus)]
    if options.memory is not None:
        args += ["--memory", options.memory]
    if options.gpus is not None:
        args += ["--gpus", options.gpus]
    return args + ["--", image, *options.command]


def container_config(image: str, options: RunOptions, port: int, env: dict[str, str]) -> dict | None:
    """The engine API's create body for what `docker run --detach` with `docker_run_args`
    starts (pure); None for what only the CLI expresses here (--gpus)."""
    if options.gpus is not None:
        return None
    host: dict = {
        "Init": True, "SecurityOpt": list(SECURITY_OPTS), "CapDrop": list(CAP_DROP), "PidsLimit": RUN_PIDS_LIMIT,
        "PortBindings": {f"{CONTAINER_PORT}/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
        "Binds": [volume.arg for volume in options.volumes],
    }
    if options.cpus is not None:
        host["NanoCpus"] = int(options.cpus * 1e9)
    if options.memory is not None:
        number, unit = options.memory[:-1], options.memory[-1].lower()
        if unit.isdigit():
            number, unit = options.memory, ""
        host["Memory"] = int(float(number) * _MEMORY_UNITS[unit])
    return {
        "Image": image, "Cmd": list(options.command) or None, "User": f"{options.uid}:{options.uid}",
        "Labels": {RUN_LABEL: "1"}, "Env": [f"{key}={value}" for key, value in env.items()],
        "ExposedPorts": {f"{CONTAINER_PORT}/tcp": {}}, "HostConfig": host,
    }


def start_server(engine: DockerEngine, image: str, options: RunOptions, timeout: float = 90) -> Server:
    """Start JupyterLab from `image` (through the engine's API when it has a local socket:
    no docker CLI process); on any failure the container is removed."""
    port = options.port or free_port()
    env = {**dict(options.env), "JUPYTER_TOKEN": options.token}
    config = container_config(image, options, port, env)
    container = engine.start_container(config) if config is not None else None
    if container is None:
        container = engine.run_detached(docker_run_args(image, options, port), env=env)
    api = f"http://127.0.0.1:{port}"
    try:
        wait_ready(engine, container, api, options.token, timeout)
    except BaseException:
        engine.remove_container(container)
        raise
    return Server(container, f"{api}/lab?token={options.token}", api, options.token)


def wait_ready(engine: DockerEngine, container: str, api: str, token: str, timeout: float) -> None:
    """Poll JupyterLab's API often (cheap) and the container's state once a second (a docker call)."""
    deadline = time.monotonic() + timeout
    next_state_check = time.monotonic() + 1.0
    request = urllib.request.Request(f"{api}/api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() >= next_state_check:
            next_state_check = time.monotonic() + 1.0
            state = engine.container_state(container) or {}
            if not state.get("Running", False):
                logs = engine.logs(container).strip().splitlines()
                raise RunFailed(f"the container stopped (exit code {state.get('ExitCode')}): {logs[-1] if logs else 'no output'}")
        time.sleep(0.03)
    logs = engine.logs(container).strip().splitlines()
    raise RunFailed(f"JupyterLab did not answer within {timeout:.0f}s; last log line: {logs[-1] if logs else 'none'}")


def run_command(engine: DockerEngine, image: str, options: RunOptions) -> int:
    """Run `options.command` in a new container instead of JupyterLab, attached to this
    terminal; the container is removed afterwards. Returns the command's exit code."""
    if not options.command:
        raise RunFailed("no command to run")
    return engine.run_attached(docker_run_args(image, options, None), env=dict(options.env))
