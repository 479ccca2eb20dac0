"""Simulated users driving JupyterHub the way a browser does, all through the proxy:

1. GET /hub/login, POST /hub/login (the dummy authenticator's form, with the
   `_xsrf` cookie's token) -> the hub's cookie;
2. POST /hub/api/users/NAME/server with the user's choices as JSON (the hub's
   REST API, with the login's cookie and X-XSRFToken, as the hub's own pages call
   it); a 429 (JupyterHub's `concurrent_spawn_limit`) is retried after the hub's
   Retry-After, as its message asks;
3. the progress event stream the spawn-pending page reads, until `ready`;
4. GET /user/NAME/api/status until the server answers through the proxy (the
   stub, simnet.py: its header and the user in its answer say it is the
   user's server, not the hub's redirect);
5. DELETE /hub/api/users/NAME/server (the home page's Stop button: cookie and
   X-XSRFToken); a stop the hub finishes later (202) is not polled (the round's
   clean-up waits for every pod to go).

Times are taken from the start of the login. `remove_users` uses the hub's service
token (admin) to stop whatever is left and delete the users."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from .simnet import STUB_HEADER

MAX_RETRY_AFTER = 120.0


class UserFailed(Exception):
    pass


@dataclass
class UserResult:
    name: str
    started: float = 0.0  # time.monotonic() at the login's start
    login: float | None = None  # seconds: login form posted and answered
    spawned: float | None = None  # seconds from the login's start to the start request's answer (429 waits included)
    ready: float | None = None  # ... to the progress stream's `ready`
    running: float | None = None  # seconds from the login's start to the server answering
    stopped: float | None = None  # seconds the Stop button's request took
    throttled: int = 0  # 429s the hub answered the spawn with
    error: str | None = None
    address: str | None = None  # where the stub was reached (the pod's address)


@dataclass
class Client:
    base: str  # the proxy's public URL, ending in /
    password: str
    poll: float = 0.2
    results: dict[str, UserResult] = field(default_factory=dict)

    async def user(self, name: str, form: dict[str, str], deadline: float) -> UserResult:
        result = self.results[name] = UserResult(name)
        jar = aiohttp.CookieJar(unsafe=True)  # the hub is at an address, not a host name
        timeout = aiohttp.ClientTimeout(total=max(1.0, deadline - time.monotonic()))
        t0 = result.started = time.monotonic()
        try:
            async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:
                xsrf = await self._log_in(http, jar, name)
                result.login = time.monotonic() - t0
                result.throttled = await self._spawn(http, name, form, xsrf)
                result.spawned = time.monotonic() - t0
                await self._until_ready(http, name, xsrf)
                result.ready = time.monotonic() - t0
                result.address = await self._until_answering(http, name)
                result.running = time.monotonic() - t0
                t1 = time.monotonic()
                await self._stop(http, name, xsrf)
                result.stopped = time.monotonic() - t1
        except UserFailed as err:
            result.error = str(err)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            result.error = f"{type(err).__name__}: {str(err)[:120]}" if str(err) else type(err).__name__
        return result

    async def _log_in(self, http: aiohttp.ClientSession, jar: aiohttp.CookieJar, name: str) -> str:
        async with http.get(self.base + "hub/login") as answer:
            await answer.read()
            if answer.status != 200:
                raise UserFailed(f"login page: HTTP {answer.status}")
        xsrf = next((c.value for c in jar if c.key == "_xsrf"), "")
        async with http.post(self.base + "hub/login", allow_redirects=False,
                             data={"username": name, "password": self.password, "_xsrf": xsrf}) as answer:
            await answer.read()
            if answer.status != 302:
                raise UserFailed(f"login: HTTP {answer.status}")
        return next((c.value for c in jar if c.key == "_xsrf"), xsrf)

    async def _spawn(self, http: aiohttp.ClientSession, name: str, form: dict[str, str], xsrf: str) -> int:
        throttled = 0
        while True:
            async with http.post(self.base + f"hub/api/users/{name}/server", json=form,
                                 headers={"X-XSRFToken": xsrf}) as answer:
                text = await answer.text()
                if answer.status in (201, 202):  # started, or starting (the progress stream follows it)
                    return throttled
                if answer.status != 429:
                    raise UserFailed(f"spawn: HTTP {answer.status} {_message(text)}")
                throttled += 1
                wait = float(answer.headers.get("Retry-After") or 10)
            await asyncio.sleep(min(wait, MAX_RETRY_AFTER))

    async def _until_ready(self, http: aiohttp.ClientSession, name: str, xsrf: str) -> None:
        url = self.base + f"hub/api/users/{name}/server/progress"
        async with http.get(url, headers={"X-XSRFToken": xsrf, "Accept": "text/event-stream"}) as answer:
            if answer.status != 200:
                raise UserFailed(f"progress: HTTP {answer.status}")
            async for line in answer.content:
                if not line.startswith(b"data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("ready"):
                    return
                if event.get("failed"):
                    raise UserFailed(f"spawn failed: {event.get('message', '')[:160]}")
        raise UserFailed("the progress stream ended before the server was ready")

    async def _until_answering(self, http: aiohttp.ClientSession, name: str) -> str:
        while True:
            async with http.get(self.base + f"user/{name}/api/status", allow_redirects=False) as answer:
                body = await answer.read()
                if answer.status == 200 and answer.headers.get(STUB_HEADER):
                    seen = json.loads(body)
                    if seen.get("user") != name:
                        raise UserFailed(f"the proxy sent {name} to {seen.get('user')}'s server")
                    return seen["address"]
            await asyncio.sleep(self.poll)

    async def _stop(self, http: aiohttp.ClientSession, name: str, xsrf: str) -> None:
        """The Stop button: its answer is the stop's end (204) or its acceptance (202, the
        hub finishes it; not polled, as the page does not: the round's clean-up waits)."""
        async with http.delete(self.base + f"hub/api/users/{name}/server", headers={"X-XSRFToken": xsrf}) as answer:
            await answer.read()
            if answer.status not in (202, 204):
                raise UserFailed(f"stop: HTTP {answer.status}")


def _message(text: str) -> str:
    """The message of the hub API's error answer (enough to count failures by reason)."""
    try:
        text = str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:160]


async def remove_users(base: str, token: str, names: list[str], concurrency: int = 20) -> list[str]:
    """Stop every server left and delete every user, as the hub's admin; the names the hub still has."""
    api = base + "hub/api/"
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}, timeout=timeout) as http:
        async def users() -> dict[str, dict]:
            found: dict[str, dict] = {}
            while True:  # the hub answers a page at a time (api_page_max_limit, 200 by default)
                async with http.get(api + "users", params={"offset": str(len(found)), "limit": "200"}) as answer:
                    page = await answer.json() if answer.status == 200 else []
                found.update((u["name"], u) for u in page)
                if not page:
                    return found

        async def stop(name: str) -> None:
            async with gate:
                for _ in range(240):  # a pending start or stop must end before the user can go
                    async with http.delete(api + f"users/{name}/server") as answer:
                        await answer.read()
                    async with http.get(api + f"users/{name}") as answer:
                        model = await answer.json() if answer.status == 200 else {}
                    if not model.get("servers") and not model.get("pending"):
                        return
                    await asyncio.sleep(0.5)

        async def delete(name: str) -> None:
            async with gate:
                async with http.delete(api + f"users/{name}") as answer:
                    await answer.read()

        known = await users()
        busy = [n for n in names if known.get(n, {}).get("servers") or known.get(n, {}).get("pending")]
        await asyncio.gather(*(stop(n) for n in busy), return_exceptions=True)
        await asyncio.gather(*(delete(n) for n in names if n in known), return_exceptions=True)
        return sorted(set(await users()) & set(names))
