"""A bounded load run of the launch service with its limits on; prints a table.

    .venv/bin/python -m benchmarks.launch_load               # 30 s, 64 clients
    .venv/bin/python -m benchmarks.launch_load --seconds 10 --clients 16

What runs: the real Tornado app and its launcher (routes, limits, tokens, the cross-site
check, real git preflight of file:// repositories) on a loopback port. JupyterHub and the
builder are the in-memory fakes of tests/launch (a hub whose servers end after
`--session` seconds, a build that returns at once), so the figures are the service's
own: how many launches a second it carries and refuses, and how fast its home page
answers meanwhile. Each client is its own loopback address (127.0.x.y); each loops
page -> stream; the clients run in two processes of their own. A prober fetches the
home page every 0.1 s from another address.
Afterwards: launches in progress, builds, removals pending and tokens must be back to
zero, and the service's thread count where it started (nothing leaked)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from tests.launch.conftest import FakeHub, config, make_repo  # noqa: E402
from tests.security.launch_support import NOTEBOOK, git_path, launch, request, service  # noqa: E402

from dsbuild.launch.limits import Rate  # noqa: E402


class SessionHub(FakeHub):
    """A fake hub whose servers stop `session` seconds after they start."""

    def __init__(self, session: float):
        super().__init__()
        self.session = session
        self.started_at: dict[str, float] = {}
        self.most = 0  # servers running at once, at most

    async def start_server(self, user, server, options):
        await super().start_server(user, server, options)
        self.started_at[user] = time.monotonic()
        self.most = max(self.most, len(await self.active_servers()))

    async def active_servers(self):
        now = time.monotonic()
        for user, at in list(self.started_at.items()):
            if now - at > self.session:
                del self.started_at[user]
                self.users.pop(user, None)
        return await super().active_servers()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def client_loop(base: str, repos: list[str], address: str, stop: float) -> Counter:
    outcomes: Counter = Counter()
    i = 0
    while time.time() < stop:
        status, events = launch(base, git_path(repos[i % len(repos)]), source=address)
        kind = str(status) if status != 200 else (events[-1].get("reason") or events[-1]["phase"]) if events else "?"
        outcomes[kind] += 1
        i += 1
    return outcomes


def client_process(base: str, repos: list[str], addresses: list[str], stop: float) -> Counter:
    """Some clients, in a process of their own (the service keeps its interpreter to itself)."""
    import logging

    logging.disable(logging.CRITICAL)
    total: Counter = Counter()
    with ThreadPoolExecutor(len(addresses)) as pool:
        for outcomes in pool.map(lambda a: client_loop(base, repos, a, stop), addresses):
            total += outcomes
    return total


def prober(base: str, stop: float, latencies: list[float]):
    while time.time() < stop:
        t0 = time.monotonic()
        status, _, _ = request(base + "/", source="127.0.254.1")
        if status == 200:
            latencies.append(time.monotonic() - t0)
        time.sleep(0.1)


def run(seconds: float, clients: int, repos_n: int, session: float, processes: int = 2) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="dsbuild-launch-load-"))
    import os

    os.environ["DSBUILD_CACHE_DIR"] = str(tmp / "cache")
    repos = [make_repo(tmp / f"repo{i}", {"notebook.ipynb": NOTEBOOK}) for i in range(repos_n)]
    cfg = config(launch_rate=Rate(10, 3600), per_repo_limit=10, max_servers=20, max_starting=20, max_builds=2)
    latencies: list[float] = []
    threads_before = threading.active_count()
    addresses = [f"127.0.{1 + n // 250}.{1 + n % 250}" for n in range(clients)]
    groups = [addresses[i::processes] for i in range(processes)]
    with service(cfg, hub=SessionHub(session)) as svc:
        stop = time.time() + seconds
        t0 = time.monotonic()
        probe = threading.Thread(target=prober, args=(svc.base, stop, latencies))
        probe.start()
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            outcomes = sum((f.result() for f in [pool.submit(client_process, svc.base, repos, g, stop) for g in groups]),
                           Counter())
        probe.join()
        elapsed = time.monotonic() - t0
        health = svc.call(_stats(svc.launcher))
        most = svc.hub.most
    return {"elapsed": elapsed, "most": most, "outcomes": outcomes, "latencies": latencies, "health": health,
            "threads_leaked": threading.active_count() - threads_before}


async def _stats(launcher):
    await launcher.remover.drain(30)
    await asyncio.sleep(0.2)
    return {"starting": sum(launcher.starting.values()), "checking": launcher.checking,
            "builds": len(launcher.registry.jobs), "removals": len(launcher.remover.pending)}


def table(result: dict, clients: int) -> str:
    out, elapsed, lat = result["outcomes"], result["elapsed"], result["latencies"]
    total = sum(out.values())
    rows = [
        ("run", f"{elapsed:.1f} s, {clients} clients (one loopback address each), limits: 10 launches/hour/client, "
                "10 per repository, 20 servers, 20 launches in progress"),
        ("launch attempts", f"{total} ({total / elapsed:.1f}/s)"),
        ("launched (ready)", f"{out['ready']} ({out['ready'] / elapsed:.1f}/s)"),
        ("refused 429 (client rate, repository)", f"{out['429']} ({out['429'] / elapsed:.1f}/s)"),
        ("refused 503 (servers, launches in progress)", f"{out['503']} ({out['503'] / elapsed:.1f}/s)"),
        ("most servers at once (cap 20)", str(result["most"])),
        ("refused on the stream", ", ".join(f"{k}: {v}" for k, v in out.items() if k not in ("ready", "429", "503"))
         or "none"),
        ("home page p50 / p99 / max", f"{statistics.median(lat) * 1000:.0f} / {percentile(lat, 0.99) * 1000:.0f} / "
                                      f"{max(lat) * 1000:.0f} ms ({len(lat)} requests)" if lat else "no answer"),
        ("left afterwards", ", ".join(f"{k} {v}" for k, v in result["health"].items())
         + f", threads {result['threads_leaked']:+d}"),
    ]
    lines = ["| measure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of the run (at most 120)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (at most 500)")
    parser.add_argument("--repos", type=int, default=8, help="repositories the clients launch")
    parser.add_argument("--session", type=float, default=2.0, help="seconds a fake server runs")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.CRITICAL)  # the service logs every refusal; the table is the output
    seconds, clients = min(args.seconds, 120), min(args.clients, 500)
    result = run(seconds, clients, args.repos, args.session)
    print(table(result, clients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
