"""Builder events -> stream events (pure)."""

from __future__ import annotations

import json

import pytest
from dsbuild.builder.errors import (
    BuildFailed,
    ConfigError,
    EngineUnavailable,
    SourceError,
)
from dsbuild.builder.fetch import Resolved
from dsbuild.builder.progress import (
    BuildFinished,
    LogLine,
    StepCached,
    StepDone,
    StepFailed,
    StepStarted,
)
from dsbuild.builder.service import Built, Status
from dsbuild.builder.source import GitSource
from dsbuild.launch.errors import RepoTooLarge, TooManyBuilds
from dsbuild.launch.events import PHASES, StreamEvent, failed, from_builder, ready

RESOLVED = Resolved(GitSource("file:///r", "a" * 40), "a" * 40, "a" * 40)


@pytest.mark.parametrize("event, phase, message", [
    (Status("resolving", "resolving x"), "resolving", "resolving x"),
    (Status("fetching", "fetching abc"), "fetching", "fetching abc"),
    (Status("pushing", "pushing r/x:1"), "pushing", "pushing r/x:1"),
    (Status("planning", "pieces: requirements.txt"), "building", "pieces: requirements.txt"),
    (Status("skipped", "x:1 is already built"), "building", "x:1 is already built"),
    (StepCached(3, "jupyter"), "building", "step 3 (jupyter): cached"),
    (StepDone(7, "dependencies", 12.34), "building", "step 7 (dependencies): done in 12.3s"),
    (StepFailed(7, "dependencies", "exit code: 1", 1, ()), "building", "step 7 (dependencies) failed: exit code: 1"),
    (Built("x:1", "sha256:1", RESOLVED, skipped=True), "building", "using x:1, built before"),
    (Built("x:1", "sha256:1", RESOLVED, False, None, (1, 2), (3,)), "building", "built x:1 (1 steps run, 2 cached)"),
    (Built("x:1", "sha256:1", RESOLVED, True, lock_origin="from the committed lock binder/requirements.lock"),
     "building", "using x:1, built before; packages from the committed lock binder/requirements.lock"),
    (Built("x:1", "sha256:1", RESOLVED, False, None, (), (3,), "resolved as of 2024-01-01"),
     "building", "built x:1 (1 steps run, 0 cached); packages resolved as of 2024-01-01"),
])
def test_builder_events(event, phase, message):
    shown = from_builder(event)
    assert (shown.phase, shown.message) == (phase, message)


def test_steps_and_log_lines():
    step = from_builder(StepStarted(5, 8, "jupyter", "RUN   uv pip install\n    jupyterlab" + " x" * 200))
    assert step.step == 5 and step.total == 8 and len(step.message) < 200
    assert step.message.startswith("step 5/8 (jupyter): RUN uv pip install jupyterlab")
    line = from_builder(LogLine("dependencies", "Collecting numpy\r"))
    assert line.log and line.message == "Collecting numpy"
    assert line.to_json() == {"phase": "building", "message": "Collecting numpy", "log": True}


def test_quiet_events_are_dropped():
    assert from_builder(StepDone(2, "base", 0.1)) is None
    assert from_builder(BuildFinished("sha256:1", (), ())) is None


@pytest.mark.parametrize("error, reason", [
    (SourceError("ref 'x' not found"), "source"), (ConfigError("bad apt.txt"), "config"),
    (BuildFailed("uv: no matching version"), "build"), (EngineUnavailable("no dockerd"), "engine"),
    (RepoTooLarge("too big"), "too-large"), (TooManyBuilds("busy"), "build-limit"),
])
def test_failures_carry_their_reason(error, reason):
    event = failed(error)
    assert event.phase == "failed" and event.reason == reason and event.message == str(error)


def test_internal_errors_do_not_leak():
    event = failed(KeyError("/srv/secret/path"))
    assert event.reason == "internal" and "secret" not in event.message


def test_sse_and_phases():
    text = ready("http://hub/user/x/lab?token=t").sse()
    assert text.startswith("data: ") and text.endswith("\n\n")
    assert json.loads(text[6:]) == {"phase": "ready", "message": "JupyterLab is ready", "url": "http://hub/user/x/lab?token=t"}
    assert PHASES == ("resolving", "fetching", "building", "pushing", "launching", "ready", "failed")
    with pytest.raises(ValueError):
        StreamEvent("waiting", "no such phase")
