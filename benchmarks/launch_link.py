"""A launch link, end to end, through the real local hub; prints each step's time.

    .venv/bin/python -m benchmarks.launch_link                # 5 runs of each kind
    .venv/bin/python -m benchmarks.launch_link --runs 3 --json /tmp/launch.json

What runs: `dsbuild hub up` (JupyterHub, configurable-http-proxy, DockerLaunchSpawner,
the servers' network and firewall) and `dsbuild serve` as its own process, on free
loopback ports, with a small git repository (a README and a notebook, no requirements:
its environment is the JupyterLab layer) reached as file://. A first launch builds the
environment (not timed). Then, per run:

- **new commit**: a code-only commit (one file changed), then the link: the launch page,
  its event stream (resolve, fetch, code-only build, hub user and server start), and
  JupyterLab answering the ready URL through the proxy (what the browser's redirect does);
- **image built**: the same link again: its image exists, nothing is built.

Side by side, under the same load (runs alternate between them): `dsbuild serve` with
the defaults; one with `--pool-size N` (default 2) on the same hub; with `--before`, a
second hub whose DockerLaunchSpawner has `ready_check_interval = 0` (JupyterHub's own
backoff wait for the server). Each service has its own image prefix, so each builds its
own images.

Each step's time is when the client first saw it, from the GET of the launch page; the
container's start comes from the engine (`State.StartedAt`). Medians of the runs, with
the load average before and after. Each run's temporary user is deleted afterwards;
at the end the service, the hub, their containers and the images are removed.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from tests.hubs import stop_service_and_hub  # noqa: E402

from dsbuild.builder.engine import DockerEngine  # noqa: E402
from dsbuild.launch.hubconfig import HubOptions  # noqa: E402
from dsbuild.launch import localhub  # noqa: E402
from dsbuild.launch.localhub import hub_up, remove_containers  # noqa: E402

from .common import DOCKER, log  # noqa: E402

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
# step name -> when it counts as reached (first event whose test is true)
MARKS = [
    ("page", None),  # the launch page answered (its checks: capacity, rate, git)
    ("commit", lambda e: e["phase"] == "resolving" and e["message"].startswith("commit ")),
    ("built", lambda e: e["phase"] == "launching"),  # fetched, built (or found), handed to the hub
    ("server running", lambda e: e["phase"] == "launching" and e["message"] == "the server is running"),
    ("ready event", lambda e: e["phase"] == "ready"),
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, timeout: float = 30) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Sec-Fetch-Mode": "navigate"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
    (path / "README.md").write_text("# launch benchmark\n")
    (path / "a.ipynb").write_text(NOTEBOOK)
    git(path, "init", "-q", "-b", "main")
    code_commit(path, 0)


def code_commit(path: Path, n: int) -> str:
    (path / "code.py").write_text(f"VERSION = {n}\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"code {n}")
    return git(path, "rev-parse", "HEAD")


def started_at(container: str) -> float | None:
    """The engine's StartedAt of a container, as a Unix time (None: gone or unknown)."""
    done = subprocess.run([DOCKER, "inspect", "-f", "{{.State.StartedAt}}", container], capture_output=True, text=True)
    text = done.stdout.strip()
    if done.returncode or not text or text.startswith("0001"):
        return None
    whole, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (frac or "0")[:6])


def container_of(prefix: str, user: str) -> str:
    """The hub's container of `user` (the spawner escapes names; its label says whose hub)."""
    names = subprocess.run([DOCKER, "ps", "-a", "--filter", f"label=io.dsbuild.hub={prefix}", "--format", "{{.Names}}"],
                           capture_output=True, text=True).stdout.split()
    return next((name for name in names if user.split("-")[-1] in name), "")


def one_launch(service: str, repo: Path, prefix: str) -> dict[str, float]:
    """One launch through the link; seconds from the page's GET to each step."""
    link = f"{service}/v2/git/{quote(repo.as_uri(), safe='')}/main?labpath=a.ipynb"
    began, wall = time.perf_counter(), time.time()
    marks: dict[str, float] = {}
    status, body = fetch(link)
    marks["page"] = time.perf_counter() - began
    match = re.search(r'data-stream="([^"]+)"', body)
    if status != 200 or not match:
        raise RuntimeError(f"launch page answered {status}: {body[-300:]}")
    events = []
    with urllib.request.urlopen(service + html.unescape(match.group(1)), timeout=600) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            events.append(event)
            for name, test in MARKS:
                if test and name not in marks and test(event):
                    marks[name] = time.perf_counter() - began
            if event["phase"] in ("ready", "failed"):
                break
    if events[-1]["phase"] != "ready":
        raise RuntimeError(f"launch failed: {events[-1]}")
    url = events[-1]["url"]
    while True:  # what the page's redirect opens: JupyterLab through the proxy, the user's token
        status, body = fetch(url, timeout=30)
        if status == 200 and "JupyterLab" in body:
            break
        time.sleep(0.02)
    marks["JupyterLab through the proxy"] = time.perf_counter() - began
    user = urlsplit(url).path.split("/")[2]
    at = started_at(container_of(prefix, user))
    if at is not None and at >= wall:  # (a server started in advance started before the link)
        marks["container started"] = at - wall
    marks["_user"] = user  # type: ignore[assignment]
    marks["_image"] = built_image(events)  # type: ignore[assignment]
    return marks


def built_image(events: list[dict]) -> str | None:
    """The image a launch's build made or found (its `built IMAGE` / `using IMAGE` event)."""
    for event in events:
        message = event.get("message", "")
        if event.get("phase") == "building" and message.startswith(("built ", "using ")):
            return message.split()[1].rstrip(",")
    return None


def remove_images(prefix: str) -> None:
    """Remove the images whose name holds `prefix` (this run's); say which could not go."""
    images = subprocess.run([DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True).stdout.split()
    for image in [image for image in images if prefix in image]:
        done = subprocess.run([DOCKER, "image", "rm", "-f", image], capture_output=True, text=True)
        if done.returncode:
            log(f"could not remove {image}: {done.stderr.strip()}")


def remove_user(hub: HubOptions, user: str) -> None:
    token = (hub.state_dir / "service_token").read_text().strip()
    base = hub.hub_url + "hub/api/users/" + quote(user)

    def call(method: str, path: str = "") -> int:
        request = urllib.request.Request(base + path, method=method, headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    call("DELETE", "/server")
    for _ in range(120):
        if call("DELETE") in (204, 404):
            return
        time.sleep(0.25)


ORDER = ["page", "commit", "built", "container started", "server running", "ready event",
         "JupyterLab through the proxy"]


def table(results: dict[str, list[dict[str, float]]]) -> str:
    kinds = list(results)
    lines = ["| step (seconds from the link) | " + " | ".join(kinds) + " |",
             "|---|" + "---:|" * len(kinds)]
    for step in ORDER:
        cells = []
        for kind in kinds:
            values = [run[step] for run in results[kind] if step in run]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})" if values else "-")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def start_service(hub: HubOptions, prefix: str, tmp: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """`dsbuild serve` as its own process on a free port; (process, its URL)."""
    port = free_port()
    dsbuild = Path(sys.executable).with_name("dsbuild")
    env = {**os.environ, "DSBUILD_CACHE_DIR": str(tmp / "cache")}
    with open(tmp / f"serve-{port}.log", "wb") as out:
        process = subprocess.Popen(
            [str(dsbuild), "serve", "--hub-state", str(hub.state_dir), "--port", str(port), "--allow-scheme", "file",
             "--image-prefix", prefix, "--launch-rate", "0", "--per-repo-limit", "0", "--rate-state", "", *extra],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    for _ in range(240):
        try:
            if fetch(f"http://127.0.0.1:{port}/health", timeout=2)[0] == 200:
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.25)
    process.terminate()
    raise RuntimeError(f"dsbuild serve did not answer; see {tmp}/serve-{port}.log")


def settle(service: str, timeout: float = 120) -> None:
    """Wait until the service starts or removes nothing in the background (its pool)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = json.loads(fetch(service + "/health")[1])
        if not health.get("users_being_removed") and not (health.get("pool") or {}).get("starting"):
            return
        time.sleep(0.2)


@dataclass(frozen=True)
class Setup:
    """One way of launching: extra lines for the hub's configuration (benchmark-only
    comparisons, e.g. a spawner setting `hub up` has no option for) and `dsbuild serve`'s
    extra arguments."""

    hub_config: str = ""
    serve_args: tuple[str, ...] = ()


def start_hub(tmp: Path, prefix: str, extra_config: str) -> HubOptions:
    hub = HubOptions(state_dir=tmp, port=free_port(), proxy_api_port=free_port(), hub_port=free_port(),
                     container_prefix=prefix, hub_label=prefix, cull_timeout=3600)
    original = localhub.render_hub_config
    with mock.patch.object(localhub, "render_hub_config", lambda *a, **kw: original(*a, **kw) + extra_config):
        hub_up(hub, say=log)
    return hub


def run(runs: int, setups: dict[str, Setup], tmp: Path) -> dict:
    """Each setup is a `dsbuild serve` (its own image prefix, so each builds its own
    images) on a hub of its hub configuration (setups with the same share one, each
    hub its own servers' network); runs alternate between them (same load)."""
    run_prefix = f"dsbuild-bench-launch-{uuid.uuid4().hex[:8]}"
    repo = tmp / "repo"
    make_repo(repo)
    hubs: dict[str, HubOptions] = {}
    services: dict[str, tuple[subprocess.Popen, str, HubOptions]] = {}
    results: dict[str, list[dict[str, float]]] = {f"{kind}, {name}": [] for kind in ("new commit", "image built")
                                                  for name in setups}
    load = [os.getloadavg()]
    try:
        for i, (name, setup) in enumerate(setups.items()):
            if setup.hub_config not in hubs:
                hubs[setup.hub_config] = start_hub(tmp / f"hub{len(hubs)}", f"{run_prefix}-h{len(hubs)}",
                                                   setup.hub_config)
            hub = hubs[setup.hub_config]
            process, url = start_service(hub, f"{run_prefix}-s{i}", tmp, list(setup.serve_args))
            services[name] = (process, url, hub)
            log(f"first launch through {name}: builds the environment (not timed)")
            remove_user(hub, one_launch(url, repo, hub.hub_label)["_user"])  # type: ignore[arg-type]
            settle(url)
        for i in range(1, runs + 1):
            code_commit(repo, i)
            for name, (_, url, hub) in services.items():
                for kind in ("new commit", "image built"):
                    marks = one_launch(url, repo, hub.hub_label)
                    remove_user(hub, marks.pop("_user"))  # type: ignore[arg-type]
                    marks.pop("_image", None)
                    settle(url)
                    results[f"{kind}, {name}"].append(marks)
                    log(f"run {i} {kind}, {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in marks.items()))
        load.append(os.getloadavg())
    finally:
        for process, _, _ in services.values():  # each removes its pool's servers when it stops
            process.terminate()
            process.wait(90)
        for hub in hubs.values():
            stop_service_and_hub(None, hub)
            remove_containers(DockerEngine(), hub.hub_label)
        remove_images(run_prefix)
    return {"results": results, "load": load,
            "setups": {name: {"hub_config": s.hub_config, "serve_args": list(s.serve_args)} for name, s in setups.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each kind (median, range)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--pool-size", type=int, default=2,
                        help="a service with this --pool-size beside the one without (0: none)")
    parser.add_argument("--before", action="store_true",
                        help="also a hub with DockerLaunchSpawner.ready_check_interval = 0 (JupyterHub's own backoff "
                             "wait for the server, as before it had the setting)")
    args = parser.parse_args(argv)
    setups = {}
    if args.before:
        setups["interval 0"] = Setup("\nc.DockerLaunchSpawner.ready_check_interval = 0\n")
    setups["default"] = Setup()
    if args.pool_size:
        setups[f"pool {args.pool_size}"] = Setup(serve_args=("--pool-size", str(args.pool_size)))
    with tempfile.TemporaryDirectory(prefix="dsbuild-bench-launch-") as tmp:
        report = run(args.runs, setups, Path(tmp))
    load = report["load"]
    print(f"launch link -> JupyterLab through the local hub, {args.runs} runs each, median (range); "
          f"load average {load[0][0]:.2f} before, {load[-1][0]:.2f} after ({os.cpu_count()} CPUs)")
    print(table(report["results"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
