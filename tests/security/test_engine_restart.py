"""Fault test: the Docker engine dies in the middle of a build.

It runs on a private dockerd of its own (own data root, exec root, socket and bridge, no
iptables), so killing it touches nothing else on the machine. The build must end with
one clear error, and once the engine is back, no image may carry the build's tag."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import DsbuildError
from dsbuild.builder.host import read_host_settings
from dsbuild.builder.progress import StepStarted
from dsbuild.builder.service import BuildRequest, build
from dsbuild.builder.source import LocalSource
from dsbuild.builder.workspace import Workspace

from .conftest import write_repo

pytestmark = pytest.mark.docker
BASE = "dsbuild-base:bookworm"


class PrivateDockerd:
    """A dockerd of the test's own; `kill()` is SIGKILL of dockerd and its containerd, as
    when the engine crashes."""

    def __init__(self, root: Path, bridge: str):
        self.root, self.bridge = root, bridge
        self.socket = root / "docker.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        args = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "--pidfile", str(self.root / "docker.pid"), "-H", f"unix://{self.socket}",
                f"--bridge={self.bridge}", "--iptables=false", "--ip-masq=false", "--ip-forward=false"]
        log = open(self.root / "dockerd.log", "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        engine = self.engine()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                engine.ping()
                return
            except DsbuildError:
                time.sleep(0.3)
        tail = (self.root / "dockerd.log").read_text(errors="replace").splitlines()[-5:]
        raise RuntimeError("the private dockerd did not start: " + " | ".join(tail))

    def engine(self) -> DockerEngine:
        engine = DockerEngine()
        engine.env["DOCKER_HOST"] = f"unix://{self.socket}"
        return engine

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        if pidfile.exists():  # an orphaned containerd (or its zombie) would be taken for a live one
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
            pidfile.unlink()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def private_dockerd(engine):
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        pytest.skip("needs root and dockerd (scripts/setup.sh installs Debian's docker.io)")
    if engine.inspect_image(BASE) is None:
        pytest.skip(f"{BASE} is not on the main engine (scripts/setup.sh builds it)")
    root = Path(tempfile.mkdtemp(prefix="dsb-pd-", dir="/tmp"))  # unix socket paths must stay short
    bridge = f"dsbpd{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "172.30.251.1/24", "dev", bridge], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    daemon = PrivateDockerd(root, bridge)
    try:
        daemon.start()
        saved = subprocess.Popen([engine.cli, "save", BASE], stdout=subprocess.PIPE, env=engine.env)
        subprocess.run([engine.cli, "load", "-q"], stdin=saved.stdout, env=daemon.engine().env, check=True,
                       capture_output=True)
        assert saved.wait() == 0
        yield daemon
    finally:
        daemon.stop()
        remove_everything_under(root)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def remove_everything_under(root: Path) -> None:
    """What a killed engine leaves: its build steps' processes (each in the cgroup named
    after its executor folder in the data root), their mounts, then the folder."""
    executor = root / "data" / "buildkit" / "executor"
    steps = [p.name for p in executor.iterdir()] if executor.is_dir() else []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
            if any(f"/buildkit/{step}" in cgroups for step in steps):
                os.kill(int(pid), signal.SIGKILL)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            pass
    time.sleep(0.5)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(root))), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_dockerd_killed_during_a_build_fails_clearly_and_tags_nothing(private_dockerd, tmp_path):
    repo = write_repo(tmp_path / "slow", {"Dockerfile": f"FROM {BASE}\nRUN echo started && sleep 120\n"}, ())
    engine = private_dockerd.engine()
    workspace = Workspace.at(tmp_path / "cache")
    request = BuildRequest(LocalSource(repo), host=read_host_settings(), name="dsbuild-test-engine-restart")
    running, outcome = threading.Event(), {}

    def drive():
        try:
            for event in build(request, engine, workspace):
                if isinstance(event, StepStarted) and "sleep" in event.instruction:
                    running.set()
        except DsbuildError as err:
            outcome["error"] = err
        except BaseException as err:  # anything else is a bug: a traceback instead of one line
            outcome["unexpected"] = err
        else:
            outcome["built"] = True

    worker = threading.Thread(target=drive, daemon=True)
    worker.start()
    assert running.wait(120), "the build never reached its long step"
    time.sleep(1)
    started = time.monotonic()
    private_dockerd.kill()
    worker.join(90)
    assert not worker.is_alive(), "the build did not end after the engine died"
    assert "unexpected" not in outcome and "built" not in outcome, outcome
    message = str(outcome["error"])
    assert message and "\n" not in message, message
    assert time.monotonic() - started < 90

    private_dockerd.start()  # the engine comes back: nothing was tagged for the build
    images = subprocess.run([engine.cli, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True, env=engine.env, check=True).stdout.split()
    assert not [i for i in images if i.startswith("dsbuild-test-engine-restart")], images
    assert [i for i in images if not i.startswith("dsbuild-limits:")] == [BASE]  # and dsbuild's limits helper
