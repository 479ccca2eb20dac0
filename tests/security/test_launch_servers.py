"""What the local hub's spawner puts into every server container, and the home volume's
life (created at start, kept across stops, deleted with the server; counted by the
storage limits while it exists). Docker calls recorded; the real engine's part is in
test_launch_lifecycle.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from dsbuild.launch.docker_spawner import DockerLaunchSpawner
from dsbuild.launch.hubconfig import default_catalog
from dsbuild.spawner.hub_config import catalog_data

from tests.spawner.conftest import hub_objects


def spawner_for(name="binder-0a1b", **config):
    user, hub, orm_spawner = hub_objects(name)
    spawner = DockerLaunchSpawner(user=user, hub=hub, orm_spawner=orm_spawner,
                                  catalog=catalog_data(default_catalog()), **config)
    calls = []

    async def docker(method, *args, **kwargs):
        calls.append((method, kwargs))
        return {}

    spawner.docker = docker
    return spawner, calls


def test_every_server_runs_as_1000_without_privileges_and_with_a_pids_limit():
    spawner, _ = spawner_for()
    host = spawner.extra_host_config
    assert host["cap_drop"] == ["ALL"] and host["security_opt"] == ["no-new-privileges"] and host["init"]
    assert host["pids_limit"] == 1024
    assert spawner.extra_create_kwargs["user"] == "1000:1000"
    assert "pids_limit" not in spawner_for(pids_limit=0)[0].extra_host_config


def test_the_home_volume_is_made_at_start_kept_in_state_and_deleted_forever(monkeypatch):
    spawner, calls = spawner_for()

    async def started(self):
        return ("10.0.0.2", 8888)

    monkeypatch.setattr("dockerspawner.DockerSpawner.start", started)

    async def scenario():
        await spawner.start()
        state = spawner.get_state()
        again, calls_again = spawner_for()
        again.load_state(state)  # the hub restarted: the volume is found again from its database
        await again.delete_forever()
        return state, again, calls_again

    state, again, calls_again = asyncio.run(scenario())
    (method, kwargs), = calls
    assert method == "create_volume" and kwargs["labels"] == {"io.dsbuild.hub": "dsbuild"}
    name = kwargs["name"]
    assert state["home_volume"] == name and spawner.volumes[name] == {"bind": "/home/jovyan", "mode": "rw"}
    assert calls_again == [("remove_volume", {"name": name})] and again.home_volume is None
    assert "home_volume" not in again.get_state()


def test_storage_limits_count_the_volumes_a_user_holds():
    spawner, _ = spawner_for()
    assert spawner.has_volume(SimpleNamespace(state={"home_volume": "v"}))
    assert not spawner.has_volume(SimpleNamespace(state={})) and not spawner.has_volume(SimpleNamespace(state=None))
