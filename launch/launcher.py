"""One launch, from link to running server, as a stream of events.

    check (page and stream): resolve the ref, image there?, size, build and repo limits
    build: join the running build of this commit or start one (builds.py)
    launch: through JupyterHub's REST API, into the logged-in user's named server
            (authenticated) or a new temporary user's server (anonymous)
    ready: the URL to open, with `urlpath`/`labpath` applied
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing

from dsbuild.builder.errors import DsbuildError
from dsbuild.builder.names import slug, source_hash
from dsbuild.builder.service import Built, Event, build
from dsbuild.builder.source import GitSource

from .builds import BuildRegistry
from .config import LaunchConfig
from .errors import LaunchLimitReached, ServerStartFailed
from .events import StreamEvent, failed, launching, ready
from .hubapi import HubClient
from .preflight import Checked, Preflight
from .routes import LaunchSpec

log = logging.getLogger("dsbuild.launch")

BuildFn = Callable[[Checked], Iterator[Event]]


def server_name_for(url: str, commit: str) -> str:
    """The named server of an authenticated launch: one per repository and commit (pure).
    `<name slug>-<6 hex of the canonical URL>-<7 hex of the commit>` (builder/names.py)."""
    source = GitSource(url)
    return f"{slug(source.name, 30)}-{source_hash(source)[:6]}-{commit[:7]}"


def open_url(hub_url: str, server_path: str, open_path: str, token: str | None = None) -> str:
    """hub URL + the server's path + what to open (+ the token for anonymous users) (pure)."""
    url = hub_url.rstrip("/") + "/" + server_path.strip("/") + "/" + open_path
    url, hash_, fragment = url.partition("#")
    if token:
        url += ("&" if "?" in url else "?") + f"token={token}"
    return url + hash_ + fragment


class Launcher:
    def __init__(self, config: LaunchConfig, hub: HubClient, preflight: Preflight | None = None,
                 registry: BuildRegistry | None = None, build_fn: BuildFn | None = None):
        self.config = config
        self.hub = hub
        self.preflight = preflight or Preflight(config)
        self.registry = registry or BuildRegistry(config.max_builds)
        self.build_fn = build_fn or self._build
        self.starting: Counter[str] = Counter()  # launches per repository not yet ready

    def _build(self, checked: Checked) -> Iterator[Event]:
        return build(self.preflight.build_request(checked), self.preflight.engine, self.preflight.workspace)

    async def check(self, spec: LaunchSpec, reserved: int = 0) -> Checked:
        """Everything that can refuse a launch before it starts (raises a LaunchError).
        `reserved`: launches of this request already counted in `starting`."""
        checked = await asyncio.get_running_loop().run_in_executor(None, self.preflight.check, spec)
        self.registry.check_capacity(checked.key, needs_build=not checked.image_exists)
        await self._check_repo_limit(spec.url, reserved)
        return checked

    async def _check_repo_limit(self, url: str, reserved: int) -> None:
        limit = self.config.per_repo_limit
        if not limit:
            return
        running = sum(1 for _, _, server in await self.hub.active_servers()
                      if (server.get("user_options") or {}).get("repo") == url)
        others = running + self.starting[url] - reserved
        if others >= limit:
            raise LaunchLimitReached(f"this repository has {others} running or starting launches, "
                                     f"the most this server allows ({limit}); try again later")

    async def launch(self, spec: LaunchSpec, user: dict | None) -> AsyncIterator[StreamEvent]:
        """The launch's events, ending with `ready` or `failed`."""
        self.starting[spec.url] += 1
        try:
            yield StreamEvent("resolving", f"resolving {spec.display}")
            checked = await self.check(spec, reserved=1)
            yield StreamEvent("resolving", f"commit {checked.commit}")
            job, started = self.registry.join_or_start(checked.key, lambda: self.build_fn(checked),
                                                       needs_build=not checked.image_exists)
            if not started:
                yield StreamEvent("building", "following the build of this commit that another launch started")
            async for event in job.follow():
                yield event
            built = await job.wait()
            starting = self._start(spec, checked, built, user)
            async with aclosing(starting):
                async for event in starting:
                    yield event
        except Exception as err:  # noqa: BLE001 -- every failure ends the stream with its reason
            if not isinstance(err, DsbuildError):
                log.exception("launch of %s failed", spec.display)
            yield failed(err)
        finally:
            self.starting[spec.url] -= 1
            if self.starting[spec.url] <= 0:
                del self.starting[spec.url]

    def _user_options(self, spec: LaunchSpec, checked: Checked, built: Built) -> dict:
        return {**self.config.user_options, "image": built.image, "repo": spec.url, "ref": checked.commit}

    async def _start(self, spec: LaunchSpec, checked: Checked, built: Built, user: dict | None) -> AsyncIterator[StreamEvent]:
        if self.config.mode == "authenticated":
            assert user is not None
            events = self._start_named(user["name"], spec, checked, built)
        else:
            events = self._start_anonymous(spec, checked, built)
        async with aclosing(events):  # a closed stream cleans up at once (e.g. the temporary user)
            async for event in events:
                yield event

    async def _start_anonymous(self, spec: LaunchSpec, checked: Checked, built: Built) -> AsyncIterator[StreamEvent]:
        name = f"{self.config.user_prefix}{secrets.token_hex(6)}"
        yield launching(f"starting a server for temporary user {name}")
        await self.hub.create_user(name)
        try:
            await self.hub.start_server(name, "", self._user_options(spec, checked, built))
            server_path = f"user/{name}"
            async for event, path in self._follow_start(name, ""):
                server_path = path or server_path
                yield event
            token = await self.hub.create_token(name, self.config.token_lifetime, "dsbuild launch link",
                                                [f"access:servers!user={name}"])
        except BaseException:
            await self._forget(name)
            raise
        yield ready(open_url(self.config.hub_url, server_path, spec.open_path, token))

    async def _forget(self, name: str) -> None:
        try:
            await self.hub.delete_user(name)
        except Exception:  # noqa: BLE001 -- the culler removes it later
            log.warning("could not delete temporary user %s", name)

    async def _start_named(self, name: str, spec: LaunchSpec, checked: Checked, built: Built) -> AsyncIterator[StreamEvent]:
        server = server_name_for(spec.url, checked.commit)
        model = await self.hub.get_user(name) or {}
        existing = (model.get("servers") or {}).get(server)
        if existing and existing.get("ready"):
            yield launching(f"your server {server} is already running")
            yield ready(open_url(self.config.hub_url, existing["url"], spec.open_path))
            return
        if not existing:
            yield launching(f"starting your server {server}")
            await self.hub.start_server(name, server, self._user_options(spec, checked, built))
        server_path = f"user/{name}/{server}"
        async for event, path in self._follow_start(name, server):
            server_path = path or server_path
            yield event
        yield ready(open_url(self.config.hub_url, server_path, spec.open_path))

    async def _follow_start(self, name: str, server: str) -> AsyncIterator[tuple[StreamEvent, str | None]]:
        """JupyterHub's progress as `launching` events, each with the server's path once known."""
        progress_events = self.hub.progress(name, server, self.config.start_timeout)
        async with aclosing(progress_events):
            async for progress in progress_events:
                if progress.failed:
                    raise ServerStartFailed(progress.message or "JupyterHub could not start the server")
                if progress.ready:
                    yield launching("the server is running"), progress.url
                    return
                if progress.message:
                    yield launching(progress.message), None
        raise ServerStartFailed("JupyterHub's progress stream ended before the server was ready")

    def stats(self) -> dict:
        return {
            "builds": {"running": len(self.registry.jobs), "started": self.registry.started_total,
                       "max": self.config.max_builds},
            "launches_starting": sum(self.starting.values()),
        }
