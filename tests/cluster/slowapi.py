"""A slow API server for the spawner's tests: a plain-HTTP proxy on the loopback, in
the test's event loop, in front of the test cluster's API server. It holds each pod
create for `delay` seconds before passing it on, as an API server that queues requests
under load does (API Priority and Fairness): the client may give up first, and the pod
is made anyway. Everything else passes straight through."""

from __future__ import annotations

import asyncio
import re
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

_POD_CREATE = re.compile(r"^/api/v1/namespaces/[^/]+/pods$")
_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


class SlowCreates:
    def __init__(self, upstream: str, ca_file: Path, delay: float):
        self.upstream, self.delay = upstream.rstrip("/"), delay
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self.in_flight = 0
        self.creates: list[int] = []  # the API server's status for each create passed on
        self.idle = asyncio.Event()
        self.idle.set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        slow = request.method == "POST" and bool(_POD_CREATE.match(request.path))
        self.in_flight += 1
        self.idle.clear()
        try:
            if slow:
                await asyncio.sleep(self.delay)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            async with aiohttp.ClientSession() as session:
                async with session.request(request.method, self.upstream + request.path_qs, data=body,
                                           headers=headers, ssl=self.ssl) as answer:
                    data = await answer.read()
                    if slow:
                        self.creates.append(answer.status)
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
                    return web.Response(status=answer.status, body=data, headers=kept)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()


@asynccontextmanager
async def slow_creates(upstream: str, ca_file: Path, delay: float):
    """(the proxy's URL, the SlowCreates) while the proxy runs; stopped after."""
    proxy = SlowCreates(upstream, ca_file, delay)
    server = web.Server(proxy.handle)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", proxy
    finally:
        await runner.cleanup()
