"""Removing temporary users without leaving anything behind.

JupyterHub deletes a user at once even while its server's spawn is pending: the spawn
goes on and leaves a container (and its volume) that no user owns. So a temporary user
is removed in three awaited steps:

    1. wait until no spawn is pending (it ends, ready or failed; bounded by `spawn_wait`)
    2. stop its server and wait until the hub says it is gone
    3. delete the user; the spawner's `delete_forever` deletes its home volume

`remove_soon` runs this in the background (a launch whose stream closed must not wait
for it), keeping a handle so that shutdown can wait for removals in flight. After a
restart of `dsbuild serve`, `sweep` removes the temporary users a killed service left:
those without a ready server (no launch page will ever give out their token).
`stop_every_server` is `dsbuild hub down`'s first step for a hub on Kubernetes, whose
pods would otherwise outlive it (the hub keeps servers across its own restarts)."""

from __future__ import annotations

import asyncio
import logging

from .hubapi import HubClient

log = logging.getLogger("dsbuild.launch")
POLL = 0.5


class UserRemover:
    def __init__(self, hub: HubClient, spawn_wait: float = 300, stop_wait: float = 120):
        self.hub = hub
        self.spawn_wait = spawn_wait
        self.stop_wait = stop_wait
        self.pending: dict[str, asyncio.Task] = {}

    async def _server(self, name: str) -> dict | None:
        model = await self.hub.get_user(name)
        if model is None:
            return None
        return (model.get("servers") or {}).get("")

    async def _wait(self, name: str, done, seconds: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not done(await self._server(name)):
            if loop.time() > deadline:
                raise TimeoutError(f"{name}: {what} did not end within {seconds:.0f}s")
            await asyncio.sleep(POLL)

    async def remove(self, name: str) -> None:
        """Stop `name`'s server (after a pending spawn ends), then delete the user."""
        await self._wait(name, lambda s: not s or s.get("pending") != "spawn", self.spawn_wait, "the pending spawn")
        if await self._server(name):
            await self.hub.stop_server(name)
            await self._wait(name, lambda s: not s, self.stop_wait, "stopping the server")
        await self.hub.delete_user(name)
        log.info("removed temporary user %s", name)

    def remove_soon(self, name: str) -> asyncio.Task:
        task = self.pending.get(name)
        if task is None:
            task = asyncio.ensure_future(self._remove_logged(name))
            self.pending[name] = task
            task.add_done_callback(lambda _: self.pending.pop(name, None))
        return task

    async def _remove_logged(self, name: str) -> None:
        try:
            await self.remove(name)
        except Exception as err:  # noqa: BLE001 -- the next sweep or the culler removes it
            log.warning("could not remove temporary user %s: %s", name, err)

    async def drain(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) for the removals in flight."""
        if self.pending:
            await asyncio.wait(list(self.pending.values()), timeout=timeout)

    async def sweep(self, prefix: str) -> list[str]:
        """Remove the temporary users whose default server is not ready; returns their names."""
        orphans = []
        async for user in self.hub.users():
            name = user.get("name", "")
            server = (user.get("servers") or {}).get("")
            if name.startswith(prefix) and not (server and server.get("ready")):
                orphans.append(name)
        for name in orphans:
            self.remove_soon(name)
        return orphans


async def stop_every_server(hub: HubClient, temporary_prefix: str, wait: float = 120) -> tuple[list[str], int]:
    """Remove every temporary user (its server, then the user: its home volume goes with
    it) and stop every other user's servers (their volumes stay: user data); wait until no
    server is active. Returns (temporary users removed, other servers stopped)."""
    remover = UserRemover(hub, spawn_wait=wait, stop_wait=wait)
    temporary = [u["name"] async for u in hub.users() if temporary_prefix and u.get("name", "").startswith(temporary_prefix)]
    others = [(user, name) for user, name, _ in await hub.active_servers() if user not in temporary]
    await asyncio.gather(*(remover.remove(name) for name in temporary))
    for user, name in others:
        await hub.stop_server(user, name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while await hub.active_servers():
        if loop.time() > deadline:
            raise TimeoutError(f"servers still active {wait:.0f}s after they were asked to stop")
        await asyncio.sleep(POLL)
    return temporary, len(others)
