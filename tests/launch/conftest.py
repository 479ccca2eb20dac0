"""Shared pieces for the launch tests: small git repositories, a fake JupyterHub REST
edge, a fake engine, and a way to run the Tornado app in-process."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from dsbuild.builder.fetch import Resolved
from dsbuild.builder.progress import LogLine
from dsbuild.builder.service import Built, Status
from dsbuild.builder.source import GitSource
from dsbuild.launch.config import LaunchConfig
from dsbuild.launch.errors import ServerStartFailed
from dsbuild.launch.hubapi import Progress
from tornado.httpclient import AsyncHTTPClient
from tornado.testing import bind_unused_port

GIT_ID = ["-c", "user.email=test@dsbuild", "-c", "user.name=dsbuild tests"]


def make_repo(path: Path, files: dict[str, str | bytes], branch: str = "main") -> str:
    """A git repository with one commit holding `files`; returns its file:// URL."""
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    subprocess.run(["git", "init", "-q", "-b", branch], cwd=path, check=True)
    commit(path, "first")
    return path.as_uri()


def commit(path: Path, message: str) -> str:
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", *GIT_ID, "commit", "-q", "--allow-empty", "-m", message], cwd=path, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The builder's git mirrors go to a temporary folder."""
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class FakeEngine:
    def __init__(self, images=()):
        self.images = set(images)

    def inspect_image(self, ref):
        return {"Id": "sha256:1"} if ref in self.images else None

    def image_labels(self, ref):
        return None  # no image here was built by dsbuild, so none is reused


class FakeHub:
    """JupyterHub's REST edge, in memory: users, servers, tokens, progress."""

    def __init__(self, running=(), refuse: str | None = None):
        self.users: dict[str, dict] = {}
        self.started: list[tuple[str, str, dict]] = []
        self.deleted: list[str] = []
        self.running = list(running)  # extra (user, server, model) entries
        self.refuse = refuse

    async def info(self):
        return {"version": "5.5.4"}

    async def get_user(self, name):
        return self.users.get(name)

    async def create_user(self, name):
        self.users[name] = {"name": name, "servers": {}}

    async def delete_user(self, name):
        self.deleted.append(name)
        self.users.pop(name, None)

    async def start_server(self, user, server, options):
        if self.refuse:
            raise ServerStartFailed(f"JupyterHub: {self.refuse}")
        self.users.setdefault(user, {"name": user, "servers": {}})
        path = f"/user/{user}/{server}/" if server else f"/user/{user}/"
        self.users[user]["servers"][server] = {"ready": True, "url": path, "user_options": options}
        self.started.append((user, server, options))

    async def stop_server(self, user, server=""):
        self.users.get(user, {}).get("servers", {}).pop(server, None)

    async def create_token(self, user, expires_in, note, scopes):
        assert scopes == [f"access:servers!user={user}"]
        return "tok"

    async def active_servers(self):
        servers = [(u, s, m) for u, d in self.users.items() for s, m in d["servers"].items()]
        return servers + self.running

    async def progress(self, user, server, timeout):
        yield Progress("Spawning server...")
        url = self.users[user]["servers"][server]["url"]
        yield Progress(f"Server ready at {url}", ready=True, url=url)


class FakeBuild:
    """The builder's generator for a launch, counting calls; `gate` holds it mid-build."""

    def __init__(self, gate: threading.Event | None = None):
        self.calls = 0
        self.images: list[str] = []
        self.gate = gate

    def __call__(self, checked):
        self.calls += 1
        yield Status("building", f"building {checked.image}")
        yield LogLine("dependencies", "Collecting numpy")
        if self.gate is not None:
            self.gate.wait(10)
        self.images.append(checked.image)
        yield Built(checked.image, "sha256:1", Resolved(GitSource(checked.spec.url, checked.commit),
                                                         checked.commit, checked.commit))


def config(**kw) -> LaunchConfig:
    values = dict(hub_url="http://hub.example/", hub_api_url="http://hub.example/hub/api/", hub_token="t",
                  allowed_schemes=("https", "file"), image_prefix="dsbuild-test")
    return LaunchConfig(**{**values, **kw})


async def serve(app):
    """Listen on a free port; returns (base URL, server)."""
    sock, port = bind_unused_port()
    from tornado.httpserver import HTTPServer

    server = HTTPServer(app)
    server.add_sockets([sock])
    return f"http://127.0.0.1:{port}", server


async def get(url, **kw):
    return await AsyncHTTPClient().fetch(url, raise_error=False, follow_redirects=False, request_timeout=60, **kw)
