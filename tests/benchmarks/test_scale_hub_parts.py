"""The pure parts of `benchmarks.scale --through-hub` (the run itself is
tests/cluster/test_scale_hub.py): hub settings a round compares, the simulated
pods' subnets, and the stub answering only at the simulated pods' addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import json

import pytest

from benchmarks.scale.hubproc import Setting
from benchmarks.scale.simnet import STUB_HEADER, PodNetwork, PodNetworkError, StubServer


def test_setting_is_a_trait_and_a_literal():
    setting = Setting.parse("JupyterHub.concurrent_spawn_limit=500")
    assert (setting.name, setting.value) == ("JupyterHub.concurrent_spawn_limit", 500)
    assert setting.line() == "c.JupyterHub.concurrent_spawn_limit = 500"
    assert str(Setting.parse("KubeLaunchSpawner.http_timeout = 30.5")) == "http_timeout=30.5"


@pytest.mark.parametrize("text", [
    "concurrent_spawn_limit=5",             # no class
    "Application.log_level='DEBUG'",        # not a class the hub run configures
    "JupyterHub.x=__import__('os')",        # not a literal: never code in the config
    "JupyterHub.db_url=1\nimport os",       # not one literal
    "JupyterHub.concurrent_spawn_limit",    # no value
])
def test_setting_refuses_what_is_not_a_setting(text):
    with pytest.raises(ValueError):
        Setting.parse(text)


def test_nodes_get_one_slash_24_each(tmp_path):
    network = PodNetwork(tmp_path)
    network.cidr = ipaddress.ip_network("10.250.0.0/16")
    assert network.node_cidrs(3) == ["10.250.0.0/24", "10.250.1.0/24", "10.250.2.0/24"]
    with pytest.raises(PodNetworkError):
        network.node_cidrs(257)


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    try:
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:  # closed unanswered, with the request unread
        data = b""
    writer.close()
    return data


def test_stub_answers_as_the_user_at_its_addresses_only():
    async def scenario():
        inside = StubServer(ipaddress.ip_network("127.0.0.0/8"), "5.5.4")
        outside = StubServer(ipaddress.ip_network("10.250.0.0/16"), "5.5.4")
        try:
            answer = await _get(await inside.start(), "/user/alice/api/status")
            refused = await _get(await outside.start(), "/user/alice/api/status")
        finally:
            await inside.stop()
            await outside.stop()
        return answer, refused, inside, outside

    answer, refused, inside, outside = asyncio.run(scenario())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and STUB_HEADER.encode() in head
    assert b"X-JupyterHub-Version: 5.5.4" in head
    assert json.loads(body) == {"user": "alice", "address": "127.0.0.1", "method": "GET",
                                "path": "/user/alice/api/status"}
    assert (inside.requests, inside.addresses) == (1, {"127.0.0.1"})
    assert refused == b"" and (outside.requests, outside.refused) == (0, 1)


def test_leftover_routes_of_dead_runs_only_are_removed(tmp_path, monkeypatch):
    import os
    import subprocess

    from benchmarks.scale import simnet

    calls = []
    monkeypatch.setattr(simnet, "_ip", lambda *args, check=True: calls.append(args))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "routes").write_text(f"10.250.0.0/16 {os.getpid()}\n10.251.0.0/16 {dead.pid}\n")
    PodNetwork(tmp_path)._remove_leftovers()
    assert calls == [("route", "del", "local", "10.251.0.0/16", "dev", "lo")]
    assert (tmp_path / "routes").read_text() == f"10.250.0.0/16 {os.getpid()}\n"
