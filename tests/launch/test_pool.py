"""Servers started in advance (launch/pool.py) through the launcher: a warm server goes to
one launch only, with a token made then for its own user; the limits, the idle timeout,
shutdown and failures leave nothing behind. Real git (file:// repositories); the engine,
the builder and JupyterHub are the fakes of conftest.py."""

from __future__ import annotations

import asyncio
import subprocess
from urllib.parse import quote

import pytest
from dsbuild.launch.errors import ConfigInvalid
from dsbuild.launch.launcher import Launcher
from dsbuild.launch.preflight import Preflight
from dsbuild.launch.routes import parse_launch

from .conftest import FakeBuild, FakeEngine, FakeHub, commit, config, make_repo

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


class TokenHub(FakeHub):
    """FakeHub whose tokens name their user, and which can refuse the pool's starts."""

    def __init__(self, refuse_after: int | None = None, **kw):
        super().__init__(**kw)
        self.tokens: list[str] = []
        self.refuse_after = refuse_after

    async def create_token(self, user, expires_in, note, scopes):
        assert scopes == [f"access:servers!user={user}"]
        self.tokens.append(user)
        return f"token-of-{user}"

    async def start_server(self, user, server, options):
        if self.refuse_after is not None and len(self.started) >= self.refuse_after:
            self.refuse = "no room"
        await super().start_server(user, server, options)


@pytest.fixture
def repo(tmp_path, cache):
    make_repo(tmp_path / "demo", {"notebook.ipynb": NOTEBOOK})
    return tmp_path / "demo"


def spec_of(repo, cfg, ref="main"):
    return parse_launch(f"git/{quote(repo.as_uri(), safe='')}/{ref}", {"labpath": "notebook.ipynb"}, cfg.allowed_schemes)


def head(repo) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(hub, **kw):
    cfg = config(**kw)
    launcher = Launcher(cfg, hub, Preflight(cfg, FakeEngine()), build_fn=FakeBuild())
    launcher.pool.clock = Clock()
    return cfg, launcher


async def launch(launcher, spec):
    events = [e async for e in launcher.launch(spec, None)]
    assert events[-1].phase == "ready", events[-1]
    return events


async def settle(launcher):
    """Wait for the pool's starts and the removals in flight."""
    while launcher.pool.tasks or launcher.remover.pending:
        await asyncio.gather(*launcher.pool.tasks, *launcher.remover.pending.values())


def user_of(url: str) -> str:
    return url.split("/user/")[1].split("/")[0]


def test_a_warm_server_goes_to_one_launch_with_its_own_users_token(repo):
    hub = TokenHub()
    cfg, launcher = make(hub, pool_size=2)
    spec = spec_of(repo, cfg)

    async def scenario():
        urls = []
        for _ in range(3):
            events = await launch(launcher, spec)
            urls.append((events[-1].url, events[-2].message))
            await settle(launcher)
        warm = [w.user for w in launcher.pool.warm]
        await launcher.pool.close()
        return urls, warm

    urls, warm = asyncio.run(scenario())
    users = [user_of(url) for url, _ in urls]
    assert len(set(users)) == 3  # three launches, three users: none handed out twice
    assert "started in advance" not in urls[0][1] and all("started in advance" in m for _, m in urls[1:])
    for url, _ in urls:
        assert url.endswith(f"/lab/tree/notebook.ipynb?token=token-of-{user_of(url)}")
    assert hub.tokens == users  # a token only when a server is handed out, for its user only
    assert len(warm) == 1 and warm[0] not in users  # refilled with a new user, per image at most 1
    assert set(hub.deleted) == set(warm)  # close() removed the warm one; the handed-out ones stay
    assert set(hub.users) == set(users)


def test_the_pool_respects_its_size_and_per_image_limits_and_keeps_the_latest_images(repo):
    hub = TokenHub()
    cfg, launcher = make(hub, pool_size=3, pool_per_image=2)
    first = spec_of(repo, cfg, head(repo))
    (repo / "code.py").write_text("x = 1\n")
    second_commit = commit(repo, "second")

    async def scenario():
        await launch(launcher, first)
        await settle(launcher)
        of_first = len(launcher.pool.warm)
        await launch(launcher, spec_of(repo, cfg, second_commit))
        await settle(launcher)
        images = [w.image for w in launcher.pool.warm]
        await launcher.pool.close()
        return of_first, images

    of_first, images = asyncio.run(scenario())
    assert of_first == 2  # per image
    first_image, second_image = images[0], images[-1]
    assert first_image != second_image
    assert sorted(images) == sorted([first_image, second_image, second_image])  # size 3: the oldest made room
    assert set(hub.users) == set(hub.tokens) and len(hub.deleted) == 4  # 1 made room, close() removed 3


def test_an_idle_warm_server_is_removed_after_the_timeout(repo):
    hub = TokenHub()
    cfg, launcher = make(hub, pool_size=1, pool_idle_timeout=60)
    spec = spec_of(repo, cfg)

    async def scenario():
        await launch(launcher, spec)
        await settle(launcher)
        (warm,) = launcher.pool.warm
        launcher.pool.clock.now += 59
        kept = launcher.pool.reap()
        launcher.pool.clock.now += 1
        reaped = launcher.pool.reap()
        await settle(launcher)
        return warm.user, kept, reaped

    user, kept, reaped = asyncio.run(scenario())
    assert kept == [] and reaped == [user]
    assert user in hub.deleted and user not in hub.users and user not in hub.tokens


def test_a_pool_start_that_fails_leaves_no_user(repo):
    hub = TokenHub(refuse_after=1)  # the launch's own start works; the pool's is refused
    cfg, launcher = make(hub, pool_size=2)

    async def scenario():
        await launch(launcher, spec_of(repo, cfg))
        await settle(launcher)

    asyncio.run(scenario())
    assert launcher.pool.warm == [] and launcher.pool.starting == {}
    (launched,) = [u for u, _, _ in hub.started]
    assert set(hub.users) == {launched} and len(hub.deleted) == 1  # the pool's user, created then removed


def test_a_warm_server_the_hub_no_longer_runs_is_not_handed_out(repo):
    hub = TokenHub()
    cfg, launcher = make(hub, pool_size=1)
    spec = spec_of(repo, cfg)

    async def scenario():
        await launch(launcher, spec)
        await settle(launcher)
        (warm,) = launcher.pool.warm
        await hub.stop_server(warm.user)  # e.g. the idle culler stopped it
        events = await launch(launcher, spec)
        await settle(launcher)
        await launcher.pool.close()
        return warm.user, events

    stale, events = asyncio.run(scenario())
    assert user_of(events[-1].url) != stale and "started in advance" not in events[-2].message
    assert stale in hub.deleted and stale not in hub.tokens


def test_warm_servers_do_not_count_against_max_servers(repo):
    hub = TokenHub()
    cfg, launcher = make(hub, pool_size=1, max_servers=2)
    first = head(repo)
    (repo / "code.py").write_text("x = 1\n")
    second = commit(repo, "second")

    async def scenario():
        await launch(launcher, spec_of(repo, cfg, first))
        await settle(launcher)
        assert len(launcher.pool.warm) == 1 and len(await hub.active_servers()) == 2
        await launch(launcher, spec_of(repo, cfg, second))  # 1 launched server + this one: allowed
        await settle(launcher)
        await launcher.pool.close()

    asyncio.run(scenario())


def test_pool_settings_are_checked():
    with pytest.raises(ConfigInvalid, match="--pool-size needs anonymous mode"):
        config(mode="authenticated", oauth_redirect_url="http://launch.example/oauth_callback", pool_size=1)
    with pytest.raises(ConfigInvalid, match="pool_idle_timeout must not be negative"):
        config(pool_idle_timeout=-1)
    assert config().pool_size == 0
