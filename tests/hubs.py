"""The one teardown of the tests that run a hub and a launch service (tests/launch,
tests/cluster, tests/security): terminate the service, stop and delete every user of the
hub (JupyterHub refuses to delete a user whose named server is active), then `hub down`,
which runs even when a step before it fails."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from urllib.parse import quote

from dsbuild.launch.hubconfig import HubOptions
from dsbuild.launch.localhub import hub_down


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
