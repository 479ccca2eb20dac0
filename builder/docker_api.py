"""The Docker engine's HTTP API over its local unix socket, for the small questions.

A `docker image inspect` or `docker tag` starts the docker CLI, which costs 50-300 ms on
this kind of machine; the same request over the socket takes 2-20 ms, and a code-only
rebuild or a start asks several of them (docs/benchmarks.md). Builds, runs and pushes
stay with the CLI (BuildKit's cache mounts, secrets and progress are only reachable
through it). Only a local socket is used: with DOCKER_HOST naming anything else (tcp://,
ssh://) or no socket to connect to, `DockerApi.connect` gives None and the engine asks
the CLI as before."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import IO, Callable
from urllib.parse import quote, urlencode

DEFAULT_SOCKET = "/var/run/docker.sock"


class ApiUnavailable(Exception):
    """The socket did not answer as the engine's API: the caller uses the CLI instead."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Chunked:
    """A request body written as it is made (HTTP chunked encoding), for `DockerApi.load`."""

    def __init__(self, connection: http.client.HTTPConnection):
        self.connection = connection

    def write(self, data: bytes) -> int:
        if data:
            self.connection.send(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")
        return len(data)

    def end(self) -> None:
        self.connection.send(b"0\r\n\r\n")


def socket_path(docker_host: str | None) -> str | None:
    """The unix socket DOCKER_HOST names (the default when unset); None for any other kind."""
    if not docker_host:
        return DEFAULT_SOCKET
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://") or None
    return None


def split_ref(ref: str) -> tuple[str, str]:
    """NAME[:TAG] -> (NAME, TAG); a colon before the last slash is a registry's port."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


class DockerApi:
    def __init__(self, path: str, timeout: float = 30):
        self.path = path
        self.timeout = timeout

    @classmethod
    def connect(cls, env: dict[str, str]) -> "DockerApi | None":
        """The API of the engine `env` points the CLI at, when it is a local socket."""
        if env.get("DOCKER_CONTEXT"):  # a CLI context may name another engine
            return None
        path = socket_path(env.get("DOCKER_HOST"))
        return cls(path) if path and os.path.exists(path) else None

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection = _UnixConnection(self.path, self.timeout)
        headers = {"Content-Type": "application/json"} if body is not None else {"Content-Length": "0"} if method == "POST" else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            raise ApiUnavailable(str(err)) from None
        finally:
            connection.close()

    def _json(self, path: str) -> dict | None:
        status, body = self._request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise ApiUnavailable(f"GET {path}: HTTP {status}")
        try:
            return json.loads(body)
        except ValueError:
            raise ApiUnavailable(f"GET {path}: not JSON") from None

    def version(self) -> str:
        data = self._json("/version") or {}
        if "Version" not in data:
            raise ApiUnavailable("no version")
        return str(data["Version"])

    def inspect_image(self, ref: str) -> dict | None:
        return self._json(f"/images/{quote(ref, safe='/:@')}/json")

    def container_state(self, container: str) -> dict | None:
        info = self._json(f"/containers/{quote(container, safe='')}/json")
        return None if info is None else info.get("State") or {}

    def tag(self, image: str, ref: str) -> bool:
        """True when tagged; False when the engine refused (the CLI then says why)."""
        name, tag = split_ref(ref)
        status, _ = self._request("POST", f"/images/{quote(image, safe='/:@')}/tag?{urlencode({'repo': name, 'tag': tag})}")
        return status == 201

    def run(self, config: dict) -> str:
        """Create and start a container; its id. ApiUnavailable when the image is not here
        (404: the CLI pulls it); RuntimeError with the engine's message when it refuses."""
        status, body = self._request("POST", "/containers/create", json.dumps(config).encode())
        if status == 404:
            raise ApiUnavailable("no such image here")
        if status != 201:
            raise RuntimeError(_message(body))
        container = json.loads(body)["Id"]
        status, body = self._request("POST", f"/containers/{quote(container, safe='')}/start")
        if status not in (204, 304):
            self._request("DELETE", f"/containers/{quote(container, safe='')}?force=1")
            raise RuntimeError(_message(body))
        return container

    def images(self, labels: dict[str, str]) -> list[dict]:
        """The images that carry every one of `labels` (Id, Created, Labels, RepoTags)."""
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        status, body = self._request("GET", f"/images/json?{urlencode({'filters': filters})}")
        if status != 200:
            raise ApiUnavailable(f"GET /images/json: HTTP {status}")
        try:
            return list(json.loads(body) or [])
        except ValueError:
            raise ApiUnavailable("GET /images/json: not JSON") from None

    def history(self, ref: str) -> list[dict] | None:
        """`docker history`: the image's history entries, newest first."""
        found = self._json(f"/images/{quote(ref, safe='/:@')}/history")
        return None if found is None else list(found)

    def load(self, write: Callable[[IO[bytes]], None]) -> str:
        """`docker load` of the tar that `write(body)` writes as it goes; the loaded image's id.
        The engine skips every layer it holds already, so the tar holds only the new ones."""
        connection = _UnixConnection(self.path, self.timeout)
        try:
            connection.putrequest("POST", "/images/load?quiet=1")
            connection.putheader("Content-Type", "application/x-tar")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            body = _Chunked(connection)
            write(body)  # type: ignore[arg-type]
            body.end()
            response = connection.getresponse()
            status, data = response.status, response.read()
        except (OSError, http.client.HTTPException) as err:
            raise ApiUnavailable(str(err)) from None
        finally:
            connection.close()
        return _loaded_id(status, data)


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message") or body[:200])
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")


def _loaded_id(status: int, data: bytes) -> str:
    """The image id in `docker load`'s answer (JSON lines), or ApiUnavailable with its error."""
    for line in data.decode(errors="replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("error") or message.get("errorDetail"):
            raise ApiUnavailable(f"loading the image failed: {message.get('error') or message['errorDetail']}")
        text = str(message.get("stream", ""))
        if text.startswith("Loaded image ID: "):
            return text.removeprefix("Loaded image ID: ").strip()
    raise ApiUnavailable(f"loading the image failed (HTTP {status}): {data[:200]!r}")
