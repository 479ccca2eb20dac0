"""Temporary users are removed in order: a pending spawn ends first, then the server is
stopped and the stop awaited, then the user is deleted (with the hub's REST calls
recorded by a scripted hub). The real hub's part is in test_launch_lifecycle.py."""

from __future__ import annotations

import asyncio

from dsbuild.launch import stopping
from dsbuild.launch.stopping import UserRemover


class ScriptedHub:
    """A hub whose user `u` has a spawn pending for `spawn_polls` reads, then runs; a stop
    takes `stop_polls` reads. Every call is recorded."""

    def __init__(self, spawn_polls: int = 3, stop_polls: int = 2):
        self.calls: list[str] = []
        self.spawn_polls, self.stop_polls = spawn_polls, stop_polls
        self.state = "spawning"
        self.exists = True

    async def get_user(self, name):
        self.calls.append("get")
        if not self.exists:
            return None
        if self.state == "spawning":
            self.spawn_polls -= 1
            if self.spawn_polls <= 0:
                self.state = "running"
            return {"name": name, "servers": {"": {"pending": "spawn", "ready": False}}}
        if self.state == "stopping":
            self.stop_polls -= 1
            if self.stop_polls <= 0:
                self.state = "stopped"
            return {"name": name, "servers": {"": {"pending": "stop", "ready": False}}}
        if self.state == "running":
            return {"name": name, "servers": {"": {"pending": None, "ready": True}}}
        return {"name": name, "servers": {}}

    async def stop_server(self, name, server=""):
        assert self.state == "running", "the stop came while the spawn was pending"
        self.calls.append("stop")
        self.state = "stopping"

    async def delete_user(self, name):
        assert self.state == "stopped", f"the user was deleted while its server was {self.state}"
        self.calls.append("delete")
        self.exists = False

    async def users(self, state="", page_size=200):
        for name, ready in (("binder-a", True), ("binder-b", False), ("alice", False)):
            yield {"name": name, "servers": {"": {"ready": ready}} if ready else {}}


def test_a_pending_spawn_ends_before_the_stop_and_the_stop_ends_before_the_deletion(monkeypatch):
    monkeypatch.setattr(stopping, "POLL", 0.01)
    hub = ScriptedHub()
    asyncio.run(UserRemover(hub).remove("binder-x"))
    assert hub.calls.index("stop") > 2  # three reads while the spawn was pending
    assert hub.calls[-1] == "delete" and hub.calls.count("stop") == 1
    assert hub.calls[hub.calls.index("stop") + 1:-1] == ["get"] * 3  # the stop was awaited


def test_a_spawn_that_never_ends_is_not_cut(monkeypatch):
    monkeypatch.setattr(stopping, "POLL", 0.01)
    hub = ScriptedHub(spawn_polls=10**9)

    async def scenario():
        remover = UserRemover(hub, spawn_wait=0.2)
        remover.remove_soon("binder-x")
        await remover.drain(5)
        return remover

    remover = asyncio.run(scenario())
    assert "stop" not in hub.calls and "delete" not in hub.calls and hub.exists
    assert remover.pending == {}


def test_the_sweep_removes_temporary_users_without_a_ready_server(monkeypatch):
    removed = []

    async def scenario():
        remover = UserRemover(ScriptedHub())

        async def remove(name):
            removed.append(name)

        monkeypatch.setattr(remover, "remove", remove)
        orphans = await remover.sweep("binder-")
        await remover.drain(5)
        return orphans

    assert asyncio.run(scenario()) == ["binder-b"] and removed == ["binder-b"]
