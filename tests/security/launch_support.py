"""Helpers for the launch service's security tests: the real Tornado app on a loopback
port (in a thread of its own, so a browser or blocking clients can talk to it) with the
fake hub and builder of tests/launch, and HTTP from chosen loopback source addresses
(127.0.0.0/8 is all this machine's: each address is a different client)."""

from __future__ import annotations

import asyncio
import html
import http.client
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from dsbuild.launch.app import make_app
from dsbuild.launch.launcher import Launcher
from dsbuild.launch.preflight import Preflight
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from ..launch.conftest import FakeBuild, FakeEngine, FakeHub

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@dataclass
class Running:
    base: str
    port: int
    launcher: Launcher
    hub: FakeHub
    build: FakeBuild
    loop: asyncio.AbstractEventLoop

    def call(self, coro, timeout: float = 60):
        """Run a coroutine on the service's loop (e.g. to read its state safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def service(cfg, hub=None, build=None, address: str = "127.0.0.1"):
    """The launch app on `address`:free port, served from its own thread and loop."""
    hub, build = hub or FakeHub(), build or FakeBuild()
    ready, stop = threading.Event(), None
    box: dict = {}

    async def main():
        nonlocal stop
        stop = asyncio.Event()
        launcher = Launcher(cfg, hub, Preflight(cfg, FakeEngine()), build_fn=build)
        sock, port = bind_unused_port(address)
        server = HTTPServer(make_app(cfg, launcher))
        server.add_sockets([sock])
        box.update(port=port, launcher=launcher, loop=asyncio.get_running_loop())
        ready.set()
        await stop.wait()
        server.stop()
        await launcher.remover.drain(30)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the service did not start"
    running = Running(f"http://{address}:{box['port']}", box["port"], box["launcher"], hub, build, box["loop"])
    try:
        yield running
    finally:
        box["loop"].call_soon_threadsafe(stop.set)
        thread.join(60)


def request(url: str, source: str = "127.0.0.1", headers: dict | None = None,
            timeout: float = 60) -> tuple[int, dict, str]:
    """GET `url` from loopback address `source`; (status, headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode(errors="replace")
    finally:
        conn.close()


def git_path(url: str, ref: str = "main") -> str:
    return f"git/{quote(url, safe='')}/{ref}"


def stream_url_of(body: str) -> str:
    match = re.search(r'data-stream="([^"]+)"', body)
    assert match, body[-500:]
    return html.unescape(match.group(1))


def events_of(body: str) -> list[dict]:
    import json

    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def launch(base: str, path: str, source: str = "127.0.0.1") -> tuple[int, list[dict]]:
    """The launch page, then its stream, as the page's script does; (page status, events)."""
    status, _, body = request(f"{base}/v2/{path}", source)
    if status != 200:
        return status, []
    _, _, stream = request(base + stream_url_of(body), source)
    return status, events_of(stream)
