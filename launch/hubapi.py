"""The JupyterHub REST edge: users, tokens, servers and their progress.

The service's token needs these scopes (`dsbuild hub up` grants them to the `dsbuild`
service): admin:users (anonymous mode creates and deletes temporary users), admin:servers
(start servers with user_options, read them back), tokens (anonymous users' tokens),
list:users and read:users."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .errors import HubUnavailable, ServerStartFailed

PAGINATION = "application/jupyterhub-pagination+json"  # JupyterHub >= 2: {items, _pagination}
PAGE_SIZE = 200


@dataclass(frozen=True)
class Progress:
    message: str
    ready: bool = False
    failed: bool = False
    url: str | None = None


def _path(user: str, server: str = "") -> str:
    base = f"users/{quote(user, safe='')}"
    return f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"


def _hub_message(err: HTTPClientError) -> str:
    try:
        body = json.loads(err.response.body) if err.response is not None and err.response.body else {}
        return str(body.get("message") or err.message)
    except (ValueError, AttributeError):
        return str(err.message)


def parse_sse_line(line: str) -> Progress | None:
    """One line of JupyterHub's progress stream -> Progress (pure)."""
    if not line.startswith("data:"):
        return None
    try:
        data = json.loads(line[5:].strip())
    except ValueError:
        return None
    return Progress(str(data.get("message", "")), bool(data.get("ready")), bool(data.get("failed")), data.get("url"))


class HubClient:
    def __init__(self, api_url: str, token: str, timeout: float = 30):
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout
        self.http = AsyncHTTPClient()

    def _request(self, method: str, path: str, body: object = None, **kw) -> HTTPRequest:
        headers = {"Authorization": f"token {self.token}", "Content-Type": "application/json",
                   **kw.pop("headers", {})}
        return HTTPRequest(
            self.api_url + path,
            method=method,
            headers=headers,
            body=None if body is None and method in ("GET", "DELETE") else json.dumps(body if body is not None else {}),
            request_timeout=kw.pop("request_timeout", self.timeout),
            **kw,
        )

    async def call(self, method: str, path: str, body: object = None, missing_ok: bool = False,
                   headers: dict | None = None) -> object:
        try:
            response = await self.http.fetch(self._request(method, path, body, headers=headers or {}))
        except HTTPClientError as err:
            if missing_ok and err.code == 404:
                return None
            if err.code in (401, 403):
                raise HubUnavailable(f"JupyterHub refused the service's token for {method} {path} "
                                     f"({err.code}); check the service's scopes") from None
            if err.code == 599:
                raise HubUnavailable(f"JupyterHub at {self.api_url} did not answer: {err.message}") from None
            raise ServerStartFailed(f"JupyterHub: {_hub_message(err)}") from None
        except OSError as err:
            raise HubUnavailable(f"cannot reach JupyterHub at {self.api_url}: {err.strerror or err}") from None
        return json.loads(response.body) if response.body else None

    async def info(self) -> dict:
        return await self.call("GET", "")  # type: ignore[return-value]

    async def get_user(self, user: str) -> dict | None:
        return await self.call("GET", f"users/{quote(user, safe='')}", missing_ok=True)  # type: ignore[return-value]

    async def create_user(self, user: str) -> None:
        await self.call("POST", f"users/{quote(user, safe='')}")

    async def delete_user(self, user: str) -> None:
        await self.call("DELETE", f"users/{quote(user, safe='')}", missing_ok=True)

    async def start_server(self, user: str, server: str, user_options: dict) -> None:
        await self.call("POST", _path(user, server), user_options)

    async def stop_server(self, user: str, server: str = "") -> None:
        await self.call("DELETE", _path(user, server), missing_ok=True)

    async def create_token(self, user: str, expires_in: int, note: str, scopes: list[str]) -> str:
        body = {"expires_in": expires_in or None, "note": note, "scopes": scopes}
        reply = await self.call("POST", f"users/{quote(user, safe='')}/tokens", body)
        return str(reply["token"])  # type: ignore[index]

    async def users(self, state: str = "", page_size: int = PAGE_SIZE) -> AsyncIterator[dict]:
        """Every user (with `state`: "active", "ready", "inactive"), read page by page."""
        offset = 0
        while True:
            query = urlencode({k: v for k, v in (("state", state), ("offset", offset), ("limit", page_size)) if v != ""})
            reply = await self.call("GET", f"users?{query}", headers={"Accept": PAGINATION})
            if isinstance(reply, list):  # a hub without pagination: one page is all there is
                for user in reply:
                    yield user
                return
            items = (reply or {}).get("items") or []  # type: ignore[union-attr]
            for user in items:
                yield user
            following = ((reply or {}).get("_pagination") or {}).get("next")  # type: ignore[union-attr]
            if not following or not items:
                return
            offset = int(following.get("offset", offset + len(items)))

    async def active_servers(self) -> list[tuple[str, str, dict]]:
        """(user, server name, server model) of every running or starting server."""
        result = []
        async for user in self.users("active"):
            for name, server in (user.get("servers") or {}).items():
                result.append((user["name"], name, server))
        return result

    async def progress(self, user: str, server: str, timeout: float) -> AsyncIterator[Progress]:
        """JupyterHub's progress events for a starting server, until ready or failed."""
        queue: asyncio.Queue[Progress | BaseException | None] = asyncio.Queue()
        buffer = [""]

        def on_chunk(chunk: bytes) -> None:
            buffer[0] += chunk.decode(errors="replace")
            *lines, buffer[0] = buffer[0].split("\n")
            for line in lines:
                event = parse_sse_line(line)
                if event is not None:
                    queue.put_nowait(event)

        request = self._request("GET", _path(user, server) + "/progress", request_timeout=timeout,
                                streaming_callback=on_chunk)

        async def fetch() -> None:
            try:
                await self.http.fetch(request)
                queue.put_nowait(None)
            except BaseException as err:  # noqa: BLE001 -- handed to the reader
                queue.put_nowait(err)

        task = asyncio.ensure_future(fetch())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, HTTPClientError) and item.code == 599:
                    raise ServerStartFailed(f"the server did not start within {timeout:.0f}s")
                if isinstance(item, HTTPClientError):
                    raise ServerStartFailed(f"JupyterHub: {_hub_message(item)}")
                if isinstance(item, BaseException):
                    raise HubUnavailable(f"lost JupyterHub's progress stream: {item}")
                yield item
                if item.ready or item.failed:
                    return
        finally:
            task.cancel()
