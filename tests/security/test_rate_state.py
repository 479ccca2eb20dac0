"""The launch rate survives a restart of the service: counts are kept in a SQLite file
(launch/ratejournal.py), read back by the next service process."""

from __future__ import annotations

import time

import pytest
from dsbuild.launch.config import LaunchConfig
from dsbuild.launch.errors import RateLimited
from dsbuild.launch.launcher import Launcher
from dsbuild.launch.limits import Rate, RateLimiter
from dsbuild.launch.ratejournal import RateJournal, restore

CLIENT, OTHER = "198.51.100.7", "198.51.100.8"


def _service(**kw) -> Launcher:
    config = LaunchConfig(hub_url="http://127.0.0.1:8000/", hub_token="t", launch_rate="3/hour", **kw)
    return Launcher(config, hub=None)


def test_a_restarted_service_remembers_each_clients_launches(tmp_path):
    state = str(tmp_path / "launch-rate.sqlite")
    first = _service(rate_state=state)
    for _ in range(3):
        first._take_rate(CLIENT)
    with pytest.raises(RateLimited):
        first._take_rate(CLIENT)
    first.rate_journal.close()
    restarted = _service(rate_state=state)  # a new process would read the same file
    with pytest.raises(RateLimited):
        restarted._take_rate(CLIENT)
    restarted._take_rate(OTHER)  # other clients are not affected
    memory_only = _service()  # what a restart did before: every count gone
    memory_only._take_rate(CLIENT)


def test_only_launches_inside_the_window_are_read_back_and_refusals_are_not_counted(tmp_path):
    journal = RateJournal(tmp_path / "rate.sqlite")
    now = time.time()
    journal.record(CLIENT, now - 7200)  # two hours ago: outside a 1/hour window
    journal.record(CLIENT, now - 60)
    limiter = RateLimiter(Rate(1, 3600))
    assert restore(limiter, journal, now) == 1
    assert limiter.take(CLIENT, now) is not None  # one launch a minute ago: refused
    assert journal.recent(now - 3600) == [(CLIENT, now - 60)]  # the old one was deleted
    journal.close()


def test_the_default_file_is_next_to_the_hubs_state(tmp_path):
    from dsbuild.launch.cli import build_config

    (tmp_path / "launch.json").write_text('{"hub_url": "http://127.0.0.1:8000/"}')
    token = tmp_path / "token"
    token.write_text("t")
    config = build_config(tmp_path, token, (), "500Mi")
    assert config.rate_state == str(tmp_path / "launch-rate.sqlite")
    assert build_config(tmp_path, token, (), "500Mi", rate_state="").rate_state == ""
