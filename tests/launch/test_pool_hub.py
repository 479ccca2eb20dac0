"""The pool of servers started in advance (`dsbuild serve --pool-size`) through the real
local hub: `dsbuild hub up` and `dsbuild serve` as processes, real builds and containers.
A warm server goes to one launch, as a user of its own, with that user's token (another
launch's token does not open it); the service removes the warm servers it holds when it
stops, and keeps the ones it handed out. Everything made here is removed (tests/hubs.py,
the `prefix` fixture of test_browser.py)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.hubs import fetch, free_port, start_serve, stop_service_and_hub

from .conftest import make_repo
from .test_browser import link, prefix, start_hub, stream, stream_link  # noqa: F401,F811 (fixture)

pytestmark = [pytest.mark.docker]
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def hub_users(hub) -> set[str]:
    token = (hub.state_dir / "service_token").read_text().strip()
    request = urllib.request.Request(hub.hub_url + "hub/api/users", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return {user["name"] for user in json.load(response)}


def health(service: str) -> dict:
    return json.loads(fetch(service + "/health")[1])


def wait_for(condition, what: str, seconds: float = 300) -> None:
    for _ in range(int(seconds / 0.25)):
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen")


def opens_jupyterlab(url: str) -> bool:
    status, body = fetch(url, headers={"Sec-Fetch-Mode": "navigate"})
    return status == 200 and "JupyterLab" in body


def test_a_warm_server_goes_to_one_launch_with_its_users_token(prefix, tmp_path):  # noqa: F811
    repo = tmp_path / "pooled"
    make_repo(repo, {"README.md": "# pooled\n", "a.ipynb": NOTEBOOK})
    port = free_port()
    hub = start_hub(prefix, tmp_path / "hub", service_url=f"http://127.0.0.1:{port}/")
    service, base = None, f"http://127.0.0.1:{port}"
    try:
        service = start_serve(hub, port, tmp_path, "--image-prefix", prefix, "--launch-rate", "0", "--pool-size", "1",
                              "--pool-idle-timeout", "3600")
        first = stream(stream_link(base, link(base, repo, query="?labpath=a.ipynb")))
        assert first[-1]["phase"] == "ready", first[-3:]
        wait_for(lambda: health(base)["pool"]["warm"] == 1, "the pool's warm server")
        warm_users = hub_users(hub)
        second = stream(stream_link(base, link(base, repo, query="?labpath=a.ipynb")))
        assert second[-1]["phase"] == "ready", second[-3:]
        assert any("started in advance" in event["message"] for event in second)

        urls = [first[-1]["url"], second[-1]["url"]]
        users = [urlsplit(url).path.split("/")[2] for url in urls]
        tokens = [parse_qs(urlsplit(url).query)["token"][0] for url in urls]
        assert users[0] != users[1] and users[1] in warm_users  # the warm server's own user
        assert opens_jupyterlab(urls[1])
        other = urls[1].replace(tokens[1], tokens[0])  # the first launch's token on the warm server
        assert not opens_jupyterlab(other)

        wait_for(lambda: health(base)["pool"]["warm"] == 1, "the pool's refill")
        refill = hub_users(hub) - set(users)
        assert len(refill) == 1
        service.terminate()
        service.wait(120)
        left = hub_users(hub)
        assert set(users) <= left and not (refill & left)  # the warm server went, the handed-out stay
    finally:
        stop_service_and_hub(service if service and service.poll() is None else None, hub)
