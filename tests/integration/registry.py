"""Debian's docker-registry on a free loopback port, for the tests; stopped afterwards.
And a registry that holds nothing and refuses every push (a stub on the loopback)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from dsbuild.builder.registry import Registry
from dsbuild.builder.run import free_port

REGISTRY_BIN = "/usr/bin/docker-registry"

CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


@contextmanager
def local_registry():
    folder = Path(tempfile.mkdtemp(prefix="dsbuild-registry-"))
    port = free_port()
    (folder / "config.yml").write_text(CONFIG.format(root=folder / "data", port=port))
    process = subprocess.Popen([REGISTRY_BIN, "serve", str(folder / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start: {process.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


class _Refusing(BaseHTTPRequestHandler):
    """The registry API's ping answers; a manifest or blob is not there (404); every
    upload is denied (403), as a registry answers a client that may not push."""

    def _answer(self, code: int, body: bytes = b"{}") -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/v2/" else 404)

    def do_HEAD(self) -> None:
        self._answer(404)

    def _deny(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(403, b'{"errors":[{"code":"DENIED","message":"pushes are refused here"}]}')

    do_POST = do_PUT = do_PATCH = _deny

    def log_message(self, *args) -> None:
        pass


@contextmanager
def refusing_registry():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Registry(f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
