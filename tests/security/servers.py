"""Small servers on this machine that the hostile tests talk to (stdlib only)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@contextmanager
def recording_index(host: str) -> Iterator[tuple[int, list[dict]]]:
    """An HTTP server that answers 404 to everything and records each request's headers."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def dribbling_server() -> Iterator[int]:
    """Accepts git's HTTP request, then sends one byte a second, forever (a slow server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    clients: list[socket.socket] = []

    def serve_one(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n\r\n")
            while not stop.wait(1.0):
                conn.sendall(b"0")
        except OSError:
            pass
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            clients.append(conn)
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        time.sleep(0.1)


@contextmanager
def git_http_server(root, hosts: tuple[str, ...] = ("127.0.0.1",), port: int = 0) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """git's smart HTTP (`git http-backend` as CGI) serving the repositories under `root`,
    on the same port on each of `hosts`; records (host, path) of every request."""
    import subprocess

    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._cgi(b"")

        def do_POST(self):
            self._cgi(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _cgi(self, body: bytes) -> None:
            path, _, query = self.path.partition("?")
            seen.append((self.server.server_address[0], self.path))
            env = {"PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                   "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "REMOTE_ADDR": self.client_address[0], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(root),
                   "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", "")}
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != "status":
                    self.send_header(key, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    servers = _bind_all(Handler, hosts, port)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield servers[0].server_address[1], seen
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _bind_all(handler, hosts: tuple[str, ...], port: int, tries: int = 20) -> list:
    """One server per host, all on one port (a free one when `port` is 0)."""
    for _ in range(tries):
        servers: list = []
        try:
            for host in hosts:
                servers.append(ThreadingHTTPServer((host, port or (servers[0].server_address[1] if servers else 0)), handler))
            return servers
        except OSError:
            for server in servers:
                server.server_close()
            if port:
                raise
    raise OSError(f"no port free on all of {hosts}")
