"""postBuild scripts that sleep forever, fork without bound, fill memory or print without
end; a Dockerfile that mounts dsbuild's caches. Each build is stopped (or refused), says
why in one line, tags nothing and leaves no process behind.

One folder is rebuilt with a different postBuild each time, so every build after the
first reuses the layers up to postBuild (the limits apply to that step)."""

from __future__ import annotations

import time
import uuid

import pytest

from dsbuild.builder.errors import BuildFailed, ConfigError
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.limits import BuildPolicy
from dsbuild.builder.service import BuildRequest, build
from dsbuild.builder.source import LocalSource
from dsbuild.builder.watch import BuildStopped

from .conftest import image_exists, log_text, processes_matching, run_build, write_repo

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def folder(engine, prefix, tmp_path_factory):
    """Built once with a harmless postBuild and the default policy, so the small limits
    of the tests below meet only the postBuild step (uv itself needs more pids)."""
    repo = tmp_path_factory.mktemp("limits") / "repo"
    built, _, error = _build(engine, prefix, repo, "echo harmless\n", BuildPolicy())
    assert error is None, f"{error}\n" + "\n".join(getattr(error, "log_tail", ()))
    return repo


def _build(engine, prefix, folder, postbuild: str, policy: BuildPolicy):
    write_repo(folder, {"postBuild": "#!/bin/bash\n" + postbuild})
    request = BuildRequest(LocalSource(folder), host=read_host_settings(), name=f"{prefix}-limits", policy=policy)
    built, events, error = run_build(request, engine)
    return built, log_text(events), error


def _nothing_tagged(engine, prefix, folder) -> bool:
    from dsbuild.builder.fetch import resolve_local

    return not image_exists(engine, f"{prefix}-limits:{resolve_local(LocalSource(folder)).tag}")


def test_fork_bomb_is_held_by_the_pids_limit(engine, prefix, folder):
    script = """
python3 - <<'EOF'
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(600); os._exit(0)
        children += 1
except OSError:
    pass
print(f"FORKED {children}", flush=True)
os._exit(1)
EOF
"""
    built, log, error = _build(engine, prefix, folder, script, BuildPolicy(pids=64, deadline=300))
    assert built is None and isinstance(error, BuildFailed)
    forked = int(next(line for line in log.splitlines() if line.startswith("FORKED")).split()[1])
    assert 0 < forked < 64
    assert _nothing_tagged(engine, prefix, folder)


def test_filling_memory_is_stopped_by_the_memory_limit(engine, prefix, folder):
    script = """
python3 - <<'EOF'
chunks = []
while True:
    chunks.append(b"\x01" * (32 * 2**20))  # written, so the pages are really held
    print(f"HELD {32 * len(chunks)} MiB", flush=True)
EOF
"""
    built, log, error = _build(engine, prefix, folder, script, BuildPolicy(memory=256 * 2**20, deadline=300))
    assert built is None and isinstance(error, BuildFailed)
    held = [int(line.split()[1]) for line in log.splitlines() if line.startswith("HELD")]
    assert held and max(held) <= 256, f"held {max(held or [0])} MiB under a 256 MiB limit"
    assert _nothing_tagged(engine, prefix, folder)


def test_printing_without_end_is_cut_off(engine, prefix, folder):
    """BuildKit clips a step's log itself (at a rate), then the step would run to the
    deadline: dsbuild's own budget stops the build as soon as it is spent."""
    marker = uuid.uuid4().hex[:12]
    policy = BuildPolicy(log_bytes=128 * 1024, deadline=600)
    built, log, error = _build(engine, prefix, folder, f"yes flood-{marker}\n", policy)
    assert built is None and isinstance(error, BuildStopped) and "more than 128 KiB of output" in str(error)
    assert len(log) < 256 * 1024
    assert _nothing_tagged(engine, prefix, folder)
    assert processes_matching(f"yes flood-{marker}") == []


def test_sleeping_forever_is_cancelled_at_the_deadline(engine, prefix, folder):
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    built, _, error = _build(engine, prefix, folder, f"echo asleep\nsleep {marker}\n", BuildPolicy(deadline=90))
    assert built is None and isinstance(error, BuildStopped)
    assert "longer than 90 s" in str(error) and "nothing was tagged" in str(error)
    assert _nothing_tagged(engine, prefix, folder)
    assert processes_matching(f"sleep {marker}") == [], "the build step still runs after the cancel"


def test_an_abandoned_build_is_cancelled(engine, prefix, folder):
    """The launch service stops reading a build nobody follows: closing the generator
    cancels it in BuildKit, and nothing is tagged."""
    marker = f"{uuid.uuid4().int % 10**6 + 2 * 10**6}"
    write_repo(folder, {"postBuild": f"#!/bin/bash\necho abandon-me\nsleep {marker}\n"})
    request = BuildRequest(LocalSource(folder), host=read_host_settings(), name=f"{prefix}-limits")
    events = build(request, engine)
    for event in events:
        if getattr(event, "text", "") == "abandon-me":
            break
    assert processes_matching(f"sleep {marker}"), "the build never reached postBuild"
    events.close()
    assert _gone_soon(f"sleep {marker}"), "the step still runs after the build was abandoned"
    assert _nothing_tagged(engine, prefix, folder)


def _gone_soon(needle: str) -> bool:
    """BuildKit kills the step once it sees the session end; give it a few seconds."""
    for _ in range(100):
        if not processes_matching(needle):
            return True
        time.sleep(0.1)
    return False


def test_a_dockerfile_cannot_mount_the_caches(engine, prefix, tmp_path):
    repo = write_repo(tmp_path / "dockerfile", {"Dockerfile": (
        "FROM dsbuild-base:bookworm\n"
        "RUN --mo\\\n# hidden by a comment inside the continuation\n"
        "unt=type=cache,id=dsbuild-uv-0123456789ab,target=/c touch /c/poison\n"
    )})
    request = BuildRequest(LocalSource(repo), host=read_host_settings(), name=f"{prefix}-mounts")
    built, events, error = run_build(request, engine)
    assert built is None and isinstance(error, ConfigError) and "RUN --mount is not allowed" in str(error)
    assert not any(type(e).__name__ == "StepStarted" for e in events), "the build started anyway"
