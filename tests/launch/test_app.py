"""The web service in-process: pages, refusals (a clear page, no build), the event stream,
and one build for simultaneous launches. Real git (file:// repositories); the engine,
the builder and JupyterHub are fakes."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from urllib.parse import quote

import pytest
from dsbuild.launch.app import make_app
from dsbuild.launch.launcher import Launcher, open_url, server_name_for
from dsbuild.launch.preflight import Preflight

from .conftest import FakeBuild, FakeEngine, FakeHub, config, get, make_repo, serve

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture
def repo(tmp_path, cache):
    return make_repo(tmp_path / "demo", {"requirements.txt": "numpy\n", "notebook.ipynb": NOTEBOOK})


def launcher_for(cfg, hub=None, build=None, engine=None):
    return Launcher(cfg, hub or FakeHub(), Preflight(cfg, engine or FakeEngine()), build_fn=build or FakeBuild())


def run(scenario, cfg=None, **parts):
    cfg = cfg or config()
    launcher = launcher_for(cfg, **parts)

    async def main():
        base, server = await serve(make_app(cfg, launcher))
        try:
            return await scenario(base, launcher)
        finally:
            server.stop()

    return asyncio.run(main())


def events_of(body: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]


def git_path(url: str, ref: str = "main") -> str:
    return f"git/{quote(url, safe='')}/{ref}"


def stream_url_of(page) -> str:
    """The event stream's URL (with its one-use token) from a launch page."""
    match = re.search(r'data-stream="([^"]+)"', page.body.decode())
    assert match, page.body[-500:]
    return html.unescape(match.group(1))


async def launch_stream(base: str, path: str):
    """What the launch page's script does: load the page, then open its stream."""
    page = await get(f"{base}/v2/{path}")
    assert page.code == 200, page.body[-500:]
    return await get(base + stream_url_of(page))


def test_home_page_makes_the_link_and_badge():
    async def scenario(base, _):
        empty = await get(base + "/")
        made = await get(base + "/?repo=gh:org/repo&ref=main&path=notebooks/a.ipynb&kind=file")
        return empty, made

    empty, made = run(scenario)
    assert empty.code == 200 and b'name="repo"' in empty.body
    page = html.unescape(made.body.decode())
    assert "/v2/gh/org/repo/main?labpath=notebooks/a.ipynb" in page
    assert "[![Launch with dsbuild](http://127.0.0.1:" in page and "/badge.svg)](http://127.0.0.1:" in page
    assert "nonce-" in made.headers["Content-Security-Policy"]


def test_home_page_escapes_and_refuses():
    async def scenario(base, _):
        return await get(base + "/?repo=" + quote("gh:<script>alert(1)</script>/x"))

    response = run(scenario)
    assert response.code == 400
    assert b"<script>alert(1)" not in response.body and b"&lt;script&gt;" in response.body


def test_badge_and_health():
    async def scenario(base, _):
        return await get(base + "/badge.svg"), await get(base + "/health"), await get(base + "/nothing")

    badge, health, missing = run(scenario)
    assert badge.headers["Content-Type"] == "image/svg+xml" and b"<svg" in badge.body and b"dsbuild" in badge.body
    assert json.loads(health.body)["builds"] == {"running": 0, "started": 0, "max": 2}
    assert missing.code == 404 and b"/v2/" in missing.body


def test_launch_page_shows_the_stream_and_builds_nothing(repo):
    build = FakeBuild()

    async def scenario(base, launcher):
        page = await get(f"{base}/v2/{git_path(repo)}?labpath=notebook.ipynb")
        return page, launcher.registry.started_total

    page, started = run(scenario, build=build)
    assert page.code == 200, page.body
    body = html.unescape(page.body.decode())
    assert f'data-stream="/build/{git_path(repo)}?labpath=notebook.ipynb&launch_token=' in body
    assert "lab/tree/notebook.ipynb" in body
    assert started == 0 and build.calls == 0


@pytest.mark.parametrize("path, status, words", [
    ("zenodo/10.5281/1234", 404, "provider of mybinder.org is not supported"),
    ("gh/org/repo/HEAD", 404, "cannot read repository https://github.com/org/repo"),
    ("gh/org/repo/main?labpath=../../etc/passwd", 400, "must not contain"),
    ("gh/org/repo/main?urlpath=//evil.example/", 400, "not another site"),
    ("gh/org/repo/a..b", 400, "not a valid git ref"),
])
def test_bad_links_get_a_clear_page_and_no_build(path, status, words):
    build = FakeBuild()

    async def scenario(base, launcher):
        return await get(f"{base}/v2/{path}"), launcher.registry.started_total

    page, started = run(scenario, build=build)
    assert page.code == status
    assert words in html.unescape(page.body.decode())
    assert started == 0 and build.calls == 0


def test_missing_ref_and_disallowed_scheme(repo):
    async def scenario(base, _):
        return await get(f"{base}/v2/{git_path(repo, 'no-such-branch')}")

    missing = run(scenario)
    assert missing.code == 404 and "ref &#39;no-such-branch&#39; not found" in missing.body.decode()
    refused = run(lambda base, _: get(f"{base}/v2/{git_path(repo)}"), cfg=config(allowed_schemes=("https",)))
    assert refused.code == 403 and b"file:// repositories are not enabled" in refused.body


def test_repository_over_the_size_limit(tmp_path, cache):
    big = make_repo(tmp_path / "big", {"data.bin": b"x" * 300_000, "a.ipynb": NOTEBOOK})
    build = FakeBuild()
    page = run(lambda base, _: get(f"{base}/v2/{git_path(big)}"), cfg=config(max_repo_size=100_000), build=build)
    assert page.code == 413 and b"more than this server builds (98 KiB)" in page.body
    assert build.calls == 0


def test_per_repository_launch_limit(repo):
    hub = FakeHub(running=[("someone", "", {"user_options": {"repo": repo}})])
    page = run(lambda base, _: get(f"{base}/v2/{git_path(repo)}"), cfg=config(per_repo_limit=1), hub=hub)
    assert page.code == 429 and b"the most this server allows (1)" in page.body


def test_build_limit(repo, tmp_path):
    other = make_repo(tmp_path / "other", {"a.ipynb": NOTEBOOK})
    gate = threading.Event()
    build = FakeBuild(gate)

    async def scenario(base, launcher):
        first = asyncio.ensure_future(launch_stream(base, git_path(other)))
        while not launcher.registry.jobs:
            await asyncio.sleep(0.02)
        page = await get(f"{base}/v2/{git_path(repo)}")
        gate.set()
        await first
        return page

    page = run(scenario, cfg=config(max_builds=1), build=build)
    assert page.code == 503 and page.headers["Retry-After"] == "60"
    assert b"1 builds are running" in page.body


def test_the_stream_builds_and_launches_a_temporary_user(repo):
    hub, build = FakeHub(), FakeBuild()

    async def scenario(base, _):
        return await launch_stream(base, f"{git_path(repo)}?labpath=notebook.ipynb")

    response = run(scenario, hub=hub, build=build)
    assert response.headers["Content-Type"] == "text/event-stream"
    events = events_of(response.body)
    phases = [e["phase"] for e in events]
    assert phases[0] == "resolving" and phases[-1] == "ready"
    assert phases.index("building") < phases.index("launching") < phases.index("ready")
    assert {"phase": "building", "message": "Collecting numpy", "log": True} in events
    (user, server, options), = hub.started
    assert user.startswith("binder-") and server == ""
    assert options["repo"] == repo and len(options["ref"]) == 40 and options["image"].startswith("dsbuild-test-demo-")
    assert events[-1]["url"] == f"http://hub.example/user/{user}/lab/tree/notebook.ipynb?token=tok"


def test_a_refused_start_fails_the_stream_and_removes_the_user(repo):
    hub = FakeHub(refuse="refused: 8 CPUs is over the per-server CPU limit of 2 CPUs (the default limits)")
    async def scenario(base, launcher):
        response = await launch_stream(base, git_path(repo))
        await launcher.remover.drain(10)
        return response

    response = run(scenario, hub=hub)
    last = events_of(response.body)[-1]
    assert last["phase"] == "failed" and last["reason"] == "launch" and "per-server CPU limit" in last["message"]
    assert hub.deleted and hub.deleted[0].startswith("binder-")


def test_a_bad_link_on_the_stream_is_a_failed_event():
    response = run(lambda base, _: get(f"{base}/build/gh/org/repo/main?labpath=/etc/passwd"))
    assert response.code == 400
    (event,) = events_of(response.body)
    assert event["phase"] == "failed" and event["reason"] == "bad-request"


def test_two_simultaneous_launches_build_once(repo):
    gate = threading.Event()
    build, hub = FakeBuild(gate), FakeHub()

    async def scenario(base, launcher):
        joins = []  # (job, started) of each launch that reached the build registry
        join_or_start = launcher.registry.join_or_start
        launcher.registry.join_or_start = lambda *args, **kw: joins.append(join_or_start(*args, **kw)) or joins[-1]
        streams = [asyncio.ensure_future(launch_stream(base, git_path(repo))) for _ in range(2)]
        while len(joins) < 2 and not any(s.done() for s in streams):  # both hold the one job before it ends
            await asyncio.sleep(0.02)
        gate.set()
        responses = await asyncio.gather(*streams)
        return responses, json.loads((await get(base + "/health")).body)

    responses, health = run(scenario, build=build, hub=hub)
    streams = [events_of(r.body) for r in responses]
    assert build.calls == 1 and health["builds"]["started"] == 1
    assert all(s[-1]["phase"] == "ready" for s in streams) and len(hub.started) == 2
    following = [any("following the build" in e["message"] for e in s) for s in streams]
    assert sorted(following) == [False, True]
    logs = [[e["message"] for e in s if e.get("log")] for s in streams]
    assert logs[0] == logs[1] == ["Collecting numpy"]


def test_authenticated_mode_needs_a_hub_login(repo):
    cfg = config(mode="authenticated", oauth_redirect_url="http://launch.example/oauth_callback")

    async def scenario(base, _):
        return await get(f"{base}/v2/{git_path(repo)}"), await get(f"{base}/build/{git_path(repo)}")

    page, stream = run(scenario, cfg=cfg)
    assert page.code == 302 and page.headers["Location"].startswith("http://hub.example/hub/api/oauth2/authorize?")
    assert "client_id=service-dsbuild" in page.headers["Location"]
    assert events_of(stream.body)[0]["reason"] == "login"


def test_authenticated_launch_uses_the_users_named_server(repo):
    cfg = config(mode="authenticated", oauth_redirect_url="http://launch.example/oauth_callback")
    hub, build = FakeHub(), FakeBuild()
    launcher = launcher_for(cfg, hub=hub, build=build)
    from dsbuild.launch.routes import parse_launch

    spec = parse_launch(git_path(repo), {"labpath": "notebook.ipynb"}, cfg.allowed_schemes)

    async def launch_twice():
        first = [e async for e in launcher.launch(spec, {"name": "alice"})]
        second = [e async for e in launcher.launch(spec, {"name": "alice"})]
        return first, second

    first, second = asyncio.run(launch_twice())
    (user, server, _), = hub.started
    assert user == "alice" and server.startswith("demo-") and server == server_name_for(repo, hub.started[0][2]["ref"])
    assert first[-1].url == f"http://hub.example/user/alice/{server}/lab/tree/notebook.ipynb"
    assert second[-1].url == first[-1].url and "already running" in second[-2].message


def test_open_url():
    assert open_url("http://hub/", "/user/a/", "lab/tree/x.ipynb", "t") == "http://hub/user/a/lab/tree/x.ipynb?token=t"
    assert open_url("http://hub/", "/user/a/", "lab?reset#frag", "t") == "http://hub/user/a/lab?reset&token=t#frag"
    assert open_url("http://hub/", "user/a/s1", "lab", None) == "http://hub/user/a/s1/lab"


def test_a_closed_stream_removes_the_temporary_user(repo):
    hub = FakeHub()
    cfg = config()
    launcher = launcher_for(cfg, hub=hub)
    from dsbuild.launch.routes import parse_launch

    spec = parse_launch(git_path(repo), {}, cfg.allowed_schemes)

    async def leave_early():
        events = launcher.launch(spec, None)
        async for event in events:
            if event.message == "Spawning server...":
                break
        await events.aclose()  # what the stream handler does when the browser goes away

    asyncio.run(leave_early())
    assert len(hub.deleted) == 1 and hub.deleted[0].startswith("binder-")
    assert launcher.starting == {}
