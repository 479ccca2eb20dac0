"""A repository's own Dockerfile gets the same cgroup limits as a generated build: every
RUN step is rewritten to start with dsbuild's static limits helper (dockerfile_limits.py,
limits_helper.py). Fork bombs and memory fillers in its RUN steps are held, also behind
a /bin/sh that an earlier step replaced with one that announces a forged cgroup."""

from __future__ import annotations

import json
import uuid
import subprocess

import pytest

from dsbuild.builder.dockerfile_limits import HELPER, limit_runs, mount
from dsbuild.builder.errors import BuildFailed, ConfigError
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.limits import BuildPolicy
from dsbuild.builder.service import BuildRequest
from dsbuild.builder.source import LocalSource

from .conftest import image_exists, log_text, run_build, write_repo

FORK = """
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
"""
FILL = """
chunks = []
while True:
    chunks.append(b"\\x01" * (32 * 2**20))
    print(f"HELD {32 * len(chunks)} MiB", flush=True)
"""


def _build(engine, prefix, folder, files, policy):
    write_repo(folder, files, executable=())
    request = BuildRequest(LocalSource(folder), host=read_host_settings(), name=f"{prefix}-repodf", policy=policy)
    built, events, error = run_build(request, engine)
    return built, log_text(events), error


@pytest.mark.docker
def test_a_fork_bomb_in_a_repository_dockerfile_is_held(engine, prefix, tmp_path):
    files = {"fork.py": FORK, "Dockerfile": "FROM dsbuild-base:bookworm\nCOPY fork.py /tmp/fork.py\nRUN python3 /tmp/fork.py\n"}
    built, log, error = _build(engine, prefix, tmp_path / "fork", files, BuildPolicy(pids=64, deadline=300))
    assert built is None and isinstance(error, BuildFailed), error
    forked = int(next(line for line in log.splitlines() if line.startswith("FORKED")).split()[1])
    assert 0 < forked < 64


@pytest.mark.docker
def test_filling_memory_in_a_repository_dockerfile_is_stopped(engine, prefix, tmp_path):
    files = {"fill.py": FILL, "Dockerfile": "FROM dsbuild-base:bookworm\nCOPY fill.py /tmp/fill.py\nRUN python3 /tmp/fill.py\n"}
    built, log, error = _build(engine, prefix, tmp_path / "fill", files, BuildPolicy(memory=256 * 2**20, deadline=300))
    assert built is None and isinstance(error, BuildFailed), error
    held = [int(line.split()[1]) for line in log.splitlines() if line.startswith("HELD")]
    assert held and max(held) <= 256, f"held {max(held or [0])} MiB under a 256 MiB limit"


@pytest.mark.docker
def test_a_replaced_shell_runs_only_after_the_limits_and_cannot_forge_the_cgroup(engine, prefix, tmp_path):
    """Step 2 swaps /bin/sh for a script that claims another cgroup and forks without
    bound; step 3 (a shell-form RUN) starts with the helper, so the script's claim is not
    the step's first line and its forks meet the step's own pids limit."""
    fake_sh = "#!/bin/bash\necho 'dsbuild-limits: /docker'\nexec python3 /tmp/fork.py\n"
    files = {"fork.py": FORK, "fake-sh": fake_sh, "Dockerfile": (
        "FROM dsbuild-base:bookworm\nCOPY fork.py /tmp/fork.py\nCOPY fake-sh /tmp/fake-sh\n"
        "RUN chmod 755 /tmp/fake-sh && rm /bin/sh && cp /tmp/fake-sh /bin/sh\n"
        "RUN echo this runs through the fake shell\n")}
    built, log, error = _build(engine, prefix, tmp_path / "shell", files, BuildPolicy(pids=64, deadline=300))
    assert built is None and isinstance(error, BuildFailed), error
    assert "cannot apply the build limits" not in str(error), log[-2000:]
    assert "dsbuild-limits: /docker\n" in log + "\n"  # the fake shell did run, after the helper
    forked = int(next(line for line in log.splitlines() if line.startswith("FORKED")).split()[1])
    assert 0 < forked < 64


@pytest.mark.docker
def test_an_ordinary_repository_dockerfile_still_builds(engine, prefix, tmp_path):
    """Exec form, SHELL, a .dockerignore that ignores everything but one file."""
    files = {"hello.txt": f"hello {uuid.uuid4()}\n", ".dockerignore": "*\n!hello.txt\n", "Dockerfile": (
        "FROM dsbuild-base:bookworm\nCOPY hello.txt /hello.txt\nRUN [\"cat\", \"/hello.txt\"]\n"
        "SHELL [\"/bin/bash\", \"-c\"]\nRUN [[ -f /hello.txt ]] && echo \"bash: $BASH_VERSION\"\n")}
    built, log, error = _build(engine, prefix, tmp_path / "ok", files, BuildPolicy(deadline=600))
    assert error is None, f"{error}\n{log[-2000:]}"
    assert image_exists(engine, built.image) and "bash: 5" in log
    listing = subprocess.run([engine.cli, "run", "--rm", built.image, "ls", "-a", "/"], capture_output=True, text=True)
    assert ".dsbuild-limits" not in listing.stdout.split(), "the helper was left in the image"


def test_every_run_step_is_rewritten_to_start_with_the_helper():
    text = ("# escape=`\nFROM base AS one\nRUN echo a `\n# a comment\n  && echo b\nSHELL [\"/bin/bash\", \"-c\"]\n"
            "run --network=none [\"python3\", \"x.py\"]\nFROM one\nRUN echo in two\nFROM other\nRUN echo three\n")
    runs = [line for line in limit_runs(text, "dsbuild-limits:x").splitlines() if line.upper().startswith("RUN")]
    argv = [json.loads(line[line.index("["):]) for line in runs]
    assert argv == [[HELPER, "/bin/sh", "-c", "echo a   && echo b"], [HELPER, "python3", "x.py"],
                    [HELPER, "/bin/bash", "-c", "echo in two"], [HELPER, "/bin/sh", "-c", "echo three"]]
    assert all(mount("dsbuild-limits:x") in line for line in runs) and "--network=none" in runs[1]
    assert limit_runs(text, "dsbuild-limits:x").startswith("# escape=`\nFROM base AS one\n")


def test_onbuild_is_refused():
    with pytest.raises(ConfigError, match="ONBUILD"):
        limit_runs("FROM base\nONBUILD RUN echo later\n", "dsbuild-limits:x")
