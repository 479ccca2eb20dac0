"""builder/docker_api.py: which engines it talks to, and its requests, against a small
HTTP server on a unix socket; and, when a Docker engine runs here, the same answers as
the docker CLI."""

import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import UnixStreamServer

import pytest

from dsbuild.builder.docker_api import DEFAULT_SOCKET, DockerApi, socket_path, split_ref
from dsbuild.builder.engine import DockerEngine


def test_only_a_local_socket_is_used():
    assert socket_path(None) == socket_path("") == DEFAULT_SOCKET
    assert socket_path("unix:///run/user/1000/docker.sock") == "/run/user/1000/docker.sock"
    assert socket_path("tcp://10.0.0.1:2376") is None and socket_path("ssh://me@host") is None
    assert DockerApi.connect({"DOCKER_HOST": "tcp://10.0.0.1:2376"}) is None
    assert DockerApi.connect({"DOCKER_HOST": "unix:///nonexistent/docker.sock"}) is None
    assert DockerApi.connect({"DOCKER_CONTEXT": "remote"}) is None


def test_split_ref_keeps_a_registry_port():
    assert split_ref("name:tag") == ("name", "tag")
    assert split_ref("localhost:5000/team/name:abc") == ("localhost:5000/team/name", "abc")
    assert split_ref("localhost:5000/name") == ("localhost:5000/name", "latest")
    assert split_ref("name") == ("name", "latest")


class _UnixHTTPServer(UnixStreamServer, HTTPServer):
    def server_bind(self):
        UnixStreamServer.server_bind(self)
        self.server_name, self.server_port = "localhost", 0

    def handle_error(self, request, client_address):
        pass  # a client that closed first (the answers are checked by the tests)


@pytest.fixture
def fake_engine(tmp_path):
    """An engine API that knows one image, one container and answers tags with 201."""
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body=b""):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            seen.append(("GET", self.path))
            answers = {"/images/localhost:5000/x:1/json": {"Id": "sha256:abc", "Config": {"Labels": {"a": "b"}}},
                       "/containers/c1/json": {"State": {"Running": True}}, "/version": {"Version": "20.10"}}
            if self.path in answers:
                self._send(200, json.dumps(answers[self.path]).encode())
            else:
                self._send(404, b'{"message": "no such image"}')

        def do_POST(self):
            seen.append(("POST", self.path))
            self._send(201 if self.path.startswith("/images/sha256:abc/tag?") else 404)

    path = str(tmp_path / "engine.sock")
    server = _UnixHTTPServer(path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DockerApi(path, timeout=5), seen
    finally:
        server.shutdown()
        server.server_close()


def test_requests_and_answers(fake_engine):
    api, seen = fake_engine
    assert api.version() == "20.10"
    assert api.inspect_image("localhost:5000/x:1")["Config"]["Labels"] == {"a": "b"}
    assert api.inspect_image("missing:1") is None
    assert api.container_state("c1") == {"Running": True}
    assert api.container_state("gone") is None
    assert api.tag("sha256:abc", "localhost:5000/team/x:abc") is True
    assert ("POST", "/images/sha256:abc/tag?repo=localhost%3A5000%2Fteam%2Fx&tag=abc") in seen
    assert api.tag("sha256:other", "x:1") is False


def test_a_dead_socket_falls_back_to_the_cli(tmp_path):
    """The engine keeps working (through the CLI) when the socket stops answering."""
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dead))  # exists, but nobody listens
    engine = DockerEngine(cli="/bin/false")
    engine.api = DockerApi(str(dead), timeout=2)
    assert engine.inspect_image("anything") is None  # /bin/false: the CLI's "not found"
    assert engine.container_state("anything") is None


def _engine_or_skip() -> DockerEngine:
    engine = DockerEngine()
    if engine.api is None:
        pytest.skip("no local Docker engine socket on this machine")
    try:
        engine.api.version()
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"the Docker engine does not answer: {err}")
    return engine


def test_the_api_answers_as_the_cli_does_on_the_real_engine():
    engine = _engine_or_skip()
    refs = subprocess.run([engine.cli, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout.split()
    ref = next((r for r in refs if "<none>" not in r), None)
    if ref is None:
        pytest.skip("no tagged image on the engine to compare")
    by_cli = json.loads(subprocess.run([engine.cli, "image", "inspect", "--format", "{{json .}}", ref],
                                       capture_output=True, text=True, check=True).stdout)
    by_api = engine.api.inspect_image(ref)
    for key in ("Id", "Created", "RootFS"):
        assert by_api[key] == by_cli[key]
    assert by_api["Config"]["Labels"] == by_cli["Config"]["Labels"]
    assert engine.api.inspect_image("dsbuild-no-such-image:never") is None


def test_the_engine_asks_the_socket_its_env_names_now(tmp_path, fake_engine):
    """Pointing an engine's env at another engine moves its API questions there too."""
    api, _ = fake_engine
    engine = DockerEngine(cli="/bin/false")
    engine.env["DOCKER_HOST"] = f"unix://{api.path}"
    assert engine.api is not None and engine.api.path == api.path
    assert engine.inspect_image("localhost:5000/x:1")["Id"] == "sha256:abc"
    engine.env["DOCKER_HOST"] = "tcp://10.0.0.1:2376"
    assert engine.api is None
