"""How soon a starting server is seen to be up.

KubeSpawner waits for the pod to run by polling its reflector with JupyterHub's
`exponential_backoff` (waits growing 0.2, 0.4, 0.8 ... up to 5 s, with jitter),
and JupyterHub then waits for the server's port the same way. A start of a few
seconds loses a second or more to those waits. DsbuildSpawner looks instead
every `ready_check_interval`: at the reflector (no API call) until the pod runs,
then at the pod's port until JupyterLab accepts a connection, so JupyterHub's
own first check succeeds at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


async def accepts_connections(url: str, timeout: float) -> bool:
    """Whether something listens at `url`'s host and port (a TCP connect, no request)."""
    host, port = _address(url)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def until_listening(url: str, interval: float, timeout: float) -> bool:
    """Look at `url`'s port every `interval` until it accepts a connection (True)
    or `timeout` seconds have passed (False: JupyterHub's own check then decides)."""
    deadline = time.monotonic() + timeout
    while not await accepts_connections(url, timeout=max(interval, 1.0)):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True
