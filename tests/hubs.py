"""What the tests that run a hub and a launch service (tests/launch, tests/cluster,
tests/security) share: `dsbuild serve` started as its own process (`start_serve`), and
the one teardown: terminate the service, stop and delete every user of the hub
(JupyterHub refuses to delete a user whose named server is active), then `hub down`,
which runs even when a step before it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from dsbuild.builder.run import free_port
from dsbuild.launch.hubconfig import HubOptions
from dsbuild.launch.localhub import hub_down


__all__ = ["answers", "delete_users", "fetch", "free_port", "start_serve", "stop_service_and_hub"]


def fetch(url: str, headers: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    """(status, body) of a GET, an HTTP error status included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def answers(url: str) -> bool:
    """`url` answers 200 now."""
    try:
        return fetch(url, timeout=2)[0] == 200
    except OSError:
        return False


def start_serve(hub: HubOptions, port: int, tmp: Path, *options: str, log: str = "serve.log",
                seconds: float = 60) -> subprocess.Popen:
    """`dsbuild serve --hub-state ... --port PORT --allow-scheme file OPTIONS...` as its own
    process, its cache in tmp/cache and its output in tmp/`log`; returned once /health
    answers. The test fails, naming the log, if the service exits or does not answer."""
    dsbuild = Path(sys.executable).with_name("dsbuild")
    env = {**os.environ, "DSBUILD_CACHE_DIR": str(tmp / "cache")}
    with open(tmp / log, "wb") as out:
        process = subprocess.Popen(
            [str(dsbuild), "serve", "--hub-state", str(hub.state_dir), "--port", str(port), "--allow-scheme", "file",
             *options], stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + seconds
    while not answers(f"http://127.0.0.1:{port}/health"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"dsbuild serve did not start; see {tmp / log}")
        time.sleep(0.25)
    return process


def _api(options: HubOptions):
    token = (options.state_dir / "service_token").read_text().strip()
    base = options.hub_url + "hub/api/"

    def call(method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    return call


def delete_users(options: HubOptions) -> None:
    """Stop every user's servers, wait until none is left, then delete the users."""
    call = _api(options)
    users = call("GET", "users")
    for user in users:
        for server in user.get("servers") or {}:
            path = f"users/{quote(user['name'])}/server" + (f"s/{quote(server)}" if server else "")
            call("DELETE", path, {"remove": True} if server else None)
    for _ in range(120):
        users = call("GET", "users")
        if not any(user.get("servers") for user in users):
            break
        time.sleep(0.5)
    for user in users:
        call("DELETE", f"users/{quote(user['name'])}")


def stop_service_and_hub(service: subprocess.Popen | None, hub: HubOptions, wait: float = 30) -> None:
    """Terminate the launch service (if it started), delete the hub's users, `hub down`."""
    try:
        if service is not None:
            service.terminate()
            service.wait(wait)
        delete_users(hub)
    finally:
        hub_down(hub.state_dir, say=print)
