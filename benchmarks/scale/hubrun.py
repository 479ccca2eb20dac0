"""The scale run through the hub (`python -m benchmarks.scale --through-hub`).

One or more rounds, each with a fresh local hub (hubproc.py) and its own users
(hubusers.py) arriving at `rate` a second, on the run's simulated nodes whose
pods answer through the stub (simnet.py). A round's row: logins per second the
hub achieved, p50/p99 login-to-running, the spawns it throttled, and the CPU
seconds the hub and the proxy used over the round (/proc, utime + stime).
Everything made is removed at the end: users (through the hub's API), pods and
claims (with the namespace), nodes, volumes, the route, the processes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tests.cluster.hub import example_catalog

from . import percentile, say
from .hubproc import LocalHub, Setting
from .hubusers import Client, UserResult, remove_users
from .simnet import PodNetwork, StubServer

MAX_USERS = 2000
MAX_DURATION = 1800.0
LOGS = Path(__file__).resolve().parents[2] / ".run" / "scale-hub" / "logs"  # the last run's hub and proxy logs



def hub_catalog() -> dict:
    """The example catalog, every user with the researchers' limits (the hub's users are in no group)."""
    data = copy.deepcopy(example_catalog())
    data["limits"]["default"] = copy.deepcopy(data["limits"]["groups"]["researchers"])
    return data


@dataclass
class Round:
    label: str
    users: list[UserResult]
    wall: float
    cpu: dict[str, float]  # process -> CPU seconds over the round
    client_cpu: float
    users_left: list[str]
    pods_left: int
    load: float  # the machine's 1-minute load average at the round's end

    def row(self, rate: float) -> str:
        ok = [u for u in self.users if u.running is not None]
        logged_in = [u for u in self.users if u.login is not None]
        span = (max(u.started + u.login for u in logged_in) - min(u.started for u in logged_in)) if logged_in else 0
        times = [u.running for u in ok]
        hub = self.cpu.get("hub", float("nan"))
        return (f"{self.label:<28} {len(self.users):>6} {rate:>6.1f} {len(logged_in) / span if span else 0:>8.1f} "
                f"{len(ok):>8} {len(self.users) - len(ok):>7} "
                f"{percentile([u.login for u in logged_in], 50):>8.2f} {percentile(times, 50):>7.2f} "
                f"{percentile(times, 99):>7.2f} {max(times, default=float('nan')):>7.2f} "
                f"{sum(u.throttled for u in self.users):>6} {hub:>7.1f} {hub / self.wall:>6.0%} "
                f"{self.cpu.get('hub wait', float('nan')):>7.1f} {self.cpu.get('proxy', float('nan')):>7.1f} "
                f"{self.client_cpu:>7.1f} {self.wall:>7.1f} {self.load:>5.1f}")

    def failures(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for u in self.users:
            if u.running is None:
                key = re.sub(r"r\d+user\d+", "USER", u.error or "unfinished at the round's deadline")
                key = re.sub(r"dsbuild-bench-\w+", "NAMESPACE", key)
                reasons[key] = reasons.get(key, 0) + 1
        return reasons


HEADER = (f"{'hub setting':<28} {'users':>6} {'rate':>6} {'logins/s':>8} {'running':>8} {'failed':>7} "
          f"{'login p50':>8} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'429s':>6} {'hub cpu':>7} {'core':>6} "
          f"{'waited':>7} {'proxy':>7} {'client':>7} {'wall s':>7} {'load':>5}")


async def run_round(label: str, names: list[str], forms: list[dict[str, str]], hub,
                    rate: float, duration: float, kubectl, namespace: str) -> Round:
    password = hub.password
    client = Client(hub.url, password)
    deadline = time.monotonic() + duration
    cpu0, client0, t0 = hub.cpu(), time.process_time(), time.monotonic()
    tasks = []
    for i, (name, form) in enumerate(zip(names, forms)):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() >= deadline:
            break
        tasks.append(asyncio.create_task(client.user(name, form, deadline)))
    await asyncio.gather(*tasks)
    wall = time.monotonic() - t0
    cpu1, client_cpu = hub.cpu(), time.process_time() - client0
    results = [client.results.get(n) or UserResult(n, error="not started before the round's deadline")
               for n in names]
    say(f"{label}: removing {len(names)} users through the hub")
    left = await remove_users(hub.url, hub.service_token(), names)
    pods = await asyncio.to_thread(_pods_gone, kubectl, namespace)
    load = os.getloadavg()[0]
    return Round(label, results, wall, {k: cpu1[k] - cpu0[k] for k in cpu1}, client_cpu, left, pods, load)


def _pods_gone(kubectl, namespace: str, timeout: float = 120) -> int:
    """The users' server pods still there after `timeout` (the release's own pods share the namespace)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = kubectl.get("pod", namespace=namespace, selector="component=singleuser-server") or []
        if not pods or time.monotonic() > deadline:
            return len(pods)
        time.sleep(1)


def local_round(kubectl, namespace: str, node_selector: dict, state: Path):
    """The run's round factory for a local hub (hubproc.py): a fresh hub per round, its
    logs kept in LOGS, its state (secrets, database) removed."""
    shutil.rmtree(LOGS, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def opened(k: int, settings: list[Setting], stub_port: int):
        hub = LocalHub(state / f"round{k}", kubectl.kubeconfig, secrets.token_hex(12))
        hub.write_config(hub_catalog(), {"namespace": namespace, "port": stub_port, "node_selector": node_selector,
                                         "start_timeout": 300, "http_timeout": 60}, settings)
        try:
            await asyncio.to_thread(hub.start)
            yield hub
        finally:
            await asyncio.to_thread(hub.stop)
            _keep_logs(hub.state, LOGS / f"round{k}")
            shutil.rmtree(hub.state, ignore_errors=True)

    return opened


async def run_through_hub(kubectl, namespace: str, population, rounds: list[list[Setting]], rate: float,
                          duration: float, network: PodNetwork, open_round) -> tuple[str, bool]:
    """Each round: `open_round(k, settings, stub_port)` gives the hub with the round's
    settings (an async context: url, password, cpu(), service_token()); its users arrive."""
    import jupyterhub

    stub = StubServer(network.cidr, jupyterhub.__version__)
    port = await stub.start()
    say(f"stub server on port {port}, answering at {network.cidr}")
    done: list[Round] = []
    try:
        for k, settings in enumerate(rounds):
            label = ",".join(map(str, settings)) or "defaults"
            names = [f"r{k}{u.name}" for u in population]
            forms = [{key: str(value) for key, value in u.options.items()} for u in population]
            async with open_round(k, settings, port) as hub:
                say(f"round {k} ({label}): {len(names)} users at {rate:g}/s through {hub.url}")
                done.append(await run_round(label, names, forms, hub, rate, duration, kubectl, namespace))
    finally:
        await stub.stop()
    return report(done, rate, stub, network), all(not r.users_left and not r.pods_left for r in done)


def _keep_logs(state: Path, prefix: Path) -> None:
    """The round's hub and proxy logs outlive its state (secrets, database): the last run's only."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for name in ("hub", "proxy"):
        if (state / f"{name}.log").exists():
            shutil.copyfile(state / f"{name}.log", f"{prefix}-{name}.log")


def report(done: list[Round], rate: float, stub: StubServer, network: PodNetwork) -> str:
    lines = ["", HEADER]
    lines += [r.row(rate) for r in done]
    lines += ["", "times in seconds from the login's start; hub/proxy/client: CPU seconds used over the round "
                  "(core: the hub's share of one core; waited: seconds the hub waited for a CPU, a loaded "
                  "machine's cost); load: 1-minute load average at the round's end"]
    for r in done:
        ok = [u for u in r.users if u.running is not None]
        phases = ", ".join(f"{what} p50 {percentile([getattr(u, what) for u in ok], 50):.2f} / p99 "
                           f"{percentile([getattr(u, what) for u in ok], 99):.2f}"
                           for what in ("login", "spawned", "ready", "running"))
        lines.append(f"{r.label}: from the login's start, s: {phases}")
        failures = r.failures()
        lines.append(f"{r.label}: failures: " + ("none" if not failures else
                                                 "; ".join(f"{n} x {k}" for k, n in failures.items())))
        lines.append(f"{r.label}: users left in the hub {len(r.users_left)}, pods left {r.pods_left}")
    lines.append(f"the stub answered {stub.requests} requests at {len(stub.addresses)} pod addresses in "
                 f"{network.cidr} (refused {stub.refused} connections to other addresses)")
    return "\n".join(lines)
