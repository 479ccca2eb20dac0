"""The hub the run through the hub drives: JupyterHub and configurable-http-proxy as
processes on this machine, configured by the same code as `dsbuild hub up` and the
Helm chart (`render_hub_config`: authenticated mode with the dummy authenticator's
login form, as the chart installs by default; KubeLaunchSpawner on the test
cluster's API server), plus the settings a round compares (`Setting`). The servers'
port is the stub's (simnet.py); their namespace and nodes are the run's."""

from __future__ import annotations

import ast
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dsbuild.launch.hubconfig import HubOptions, Paths, check_options, render_hub_config
from dsbuild.launch.localhub import find_proxy
from dsbuild.spawner.catalog import parse_catalog

SETTING = re.compile(r"^(JupyterHub|KubeLaunchSpawner|ConfigurableHTTPProxy|HubDatabase)\.[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Setting:
    """One hub setting a round runs with: `Class.trait=python-literal`."""

    name: str
    value: object

    @classmethod
    def parse(cls, text: str) -> Setting:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not SETTING.match(name):
            raise ValueError(f"{text!r}: expected JupyterHub.NAME=VALUE (or KubeLaunchSpawner., "
                             "ConfigurableHTTPProxy., HubDatabase.), e.g. JupyterHub.concurrent_spawn_limit=500")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f"{text!r}: the value is not a Python literal (a number, string, True/False)") from None
        return cls(name, value)

    def __str__(self) -> str:
        return f"{self.name.split('.', 1)[1]}={self.value!r}"

    def line(self) -> str:
        return f"c.{self.name} = {self.value!r}"


def _free_port() -> int:
    from dsbuild.builder.run import free_port
    return free_port()


def _secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_wait_seconds(pid: int) -> float:
    """Seconds the process's main thread has waited on a run queue for a CPU (/proc/PID/schedstat):
    what a loaded machine, not the process, costs it."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


class LocalHub:
    """JupyterHub and its proxy for one round; `stop()` ends both (and the hub's services)."""

    def __init__(self, state: Path, kubeconfig: Path, password: str):
        self.state = state
        self.kubeconfig = kubeconfig
        self.password = password
        self.port, self.hub_port, self.api_port = _free_port(), _free_port(), _free_port()
        self.paths = Paths(state)
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def service_token(self) -> str:
        return self.paths.service_token.read_text().strip()

    def write_config(self, catalog: dict, spawner: dict, settings: list[Setting]) -> None:
        options = HubOptions(state_dir=self.state, ip="127.0.0.1", port=self.port, proxy_api_port=self.api_port,
                             hub_port=self.hub_port, mode="authenticated", authenticator="dummy",
                             spawner="kubernetes", hub_connect_url=f"http://127.0.0.1:{self.hub_port}",
                             service_url=f"http://127.0.0.1:{_free_port()}/", cull_timeout=3600)
        check_options(options, launch=False)
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        for path in (self.paths.cookie_secret, self.paths.proxy_token, self.paths.service_token):
            _secret(path, secrets.token_hex(32))
        _secret(self.paths.password, self.password)
        text = render_hub_config(options, self.paths, parse_catalog(catalog), "127.0.0.1", kube_settings=spawner)
        extra = "".join(f"{s.line()}\n" for s in settings)
        _secret(self.paths.config, text.rstrip("\n") + "\n\n# The benchmark round's settings\n" + extra)

    def start(self, timeout: float = 120) -> None:
        token = self.paths.proxy_token.read_text().strip()
        env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": token, "KUBECONFIG": str(self.kubeconfig)}
        hub = f"http://127.0.0.1:{self.hub_port}"
        self._spawn("proxy", [find_proxy(), "--ip", "127.0.0.1", "--port", str(self.port), "--api-ip", "127.0.0.1",
                              "--api-port", str(self.api_port), "--default-target", hub,
                              "--error-target", f"{hub}/hub/error", "--log-level", "warn"], env)
        self._spawn("hub", [sys.executable, "-m", "jupyterhub", "-f", str(self.paths.config)], env)
        deadline = time.monotonic() + timeout
        while not self._answers(self.url + "hub/api/"):
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited at start (code {process.returncode}); see {self.state}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not answer within {timeout:.0f}s; see {self.state / 'hub.log'}")
            time.sleep(0.3)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used by the hub and the proxy, and the hub's seconds waiting for a CPU."""
        used = {name: cpu_seconds(p.pid) for name, p in self.processes.items()}
        if "hub" in self.processes:
            used["hub wait"] = cpu_wait_seconds(self.processes["hub"].pid)
        return used

    def stop(self) -> None:
        for name in ("hub", "proxy"):  # the hub stops its services (the idle culler) on SIGTERM
            process = self.processes.pop(name, None)
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            try:  # anything the hub started in its session (it has one of its own)
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _spawn(self, name: str, argv: list[str], env: dict) -> None:
        with open(self.state / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, cwd=self.state, env=env,
                                                    start_new_session=True)

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False
