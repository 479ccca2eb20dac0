"""Launch floods on loopback, bounded in count: from one client (its rate), from many
(the global server cap, the per-repository cap, launches in progress). Every refusal is
a 429/503 with Retry-After, and nothing is started for it. The service is the real app
with the fake hub and builder of tests/launch (the real hub's part is in
test_launch_lifecycle.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from dsbuild.launch.limits import Rate

from ..launch.conftest import FakeBuild, FakeHub, config, make_repo
from .launch_support import NOTEBOOK, git_path, launch, request, service


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return make_repo(tmp_path / "demo", {"notebook.ipynb": NOTEBOOK})


def test_one_client_gets_its_rate_and_then_429_with_nothing_started(repo):
    cfg = config(launch_rate=Rate(10, 3600), per_repo_limit=0)
    with service(cfg) as svc:
        results = [launch(svc.base, git_path(repo)) for _ in range(25)]
        status, headers, body = request(f"{svc.base}/v2/{git_path(repo)}")
        other = launch(svc.base, git_path(repo), source="127.0.0.2")
    statuses = [s for s, _ in results]
    assert statuses == [200] * 10 + [429] * 15
    assert all(events[-1]["phase"] == "ready" for _, events in results[:10])
    assert status == 429 and 3500 <= int(headers["Retry-After"]) <= 3600
    assert "you started 10 launches already" in body and "10 per hour" in body
    assert len(svc.hub.started) == 10 + 1  # the ten, then another client's
    assert other[0] == 200 and other[1][-1]["phase"] == "ready"
    assert svc.launcher.refused["rate-limit"] == 16


def test_many_clients_at_once_never_exceed_the_global_server_cap(tmp_path, monkeypatch):
    """40 clients (40 loopback addresses), 40 repositories, at once; at most 5 servers."""
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    repos = [make_repo(tmp_path / f"r{i}", {"notebook.ipynb": NOTEBOOK}) for i in range(40)]
    gate = threading.Event()
    cfg = config(max_servers=5, max_builds=40, max_starting=40)
    with service(cfg, hub=FakeHub(), build=FakeBuild(gate)) as svc:
        with ThreadPoolExecutor(40) as pool:
            futures = [pool.submit(launch, svc.base, git_path(r), f"127.0.1.{i + 1}") for i, r in enumerate(repos)]
            threading.Timer(3, gate.set).start()  # hold the builds so that every launch is in flight at once
            results = [f.result(120) for f in futures]
        running = svc.call(svc.hub.active_servers())
    ready = [events for status, events in results if status == 200 and events and events[-1]["phase"] == "ready"]
    refused = [(status, events) for status, events in results if (status, events) not in [(200, e) for e in ready]]
    assert 1 <= len(ready) <= 5 and len(running) == len(ready) == len(svc.hub.started)
    for status, events in refused:  # refused at the page (503), or on the stream (a failed event)
        assert status == 503 or events[-1]["reason"] == "server-limit", (status, events[-1:])
    assert len(ready) + len(refused) == 40


def test_the_per_repository_cap_counts_every_spelling_of_the_url(repo, tmp_path):
    spellings = [git_path(repo), git_path(repo + "/"), git_path(repo + ".git"), git_path(repo.replace("file:///", "file://localhost/"))]
    (tmp_path / "demo.git").symlink_to(tmp_path / "demo")  # so that the .git spelling reads too
    cfg = config(per_repo_limit=2, launch_rate=Rate(0, 3600))
    with service(cfg) as svc:
        results = [launch(svc.base, path) for path in spellings]
    assert [s for s, _ in results] == [200, 200, 429, 429]
    assert len(svc.hub.started) == 2
    assert {options["repo"] for _, _, options in svc.hub.started} == {repo}


def test_launches_in_progress_are_bounded(repo, tmp_path):
    gate = threading.Event()
    others = [make_repo(tmp_path / f"o{i}", {"notebook.ipynb": NOTEBOOK}) for i in range(6)]
    cfg = config(max_starting=3, max_builds=10, max_servers=0, per_repo_limit=0,
                 launch_rate=Rate(0, 3600))
    with service(cfg, build=FakeBuild(gate)) as svc:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(launch, svc.base, git_path(r), f"127.0.2.{i + 1}") for i, r in enumerate(others)]
            threading.Timer(3, gate.set).start()
            results = [f.result(120) for f in futures]
    ready = [events for status, events in results if events and events[-1]["phase"] == "ready"]
    assert 1 <= len(ready) <= 3 and len(svc.hub.started) == len(ready)
    assert all(status == 503 or events[-1]["reason"] == "launch-limit"
               for status, events in results if not (events and events[-1]["phase"] == "ready"))
