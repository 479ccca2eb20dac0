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
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from pathlib import Path

from dsbuild.builder.errors import DsbuildError, SourceError
from dsbuild.builder.fetch import public_url
from dsbuild.builder.names import canonical_url, slug, source_hash
from dsbuild.builder.service import Built, Event, build
from dsbuild.builder.source import GitSource

from dsbuild.builder.target import IN_REGISTRY

from .builds import BuildRegistry
from .config import LaunchConfig
from .errors import (
    LaunchLimitReached,
    RateLimited,
    RepoNotFound,
    ServerLimitReached,
    ServerStartFailed,
    TooManyLaunches,
)
from .events import StreamEvent, failed, launching, ready
from .hosts import safe_source_message
from .hubapi import HubClient
from .limits import RateLimiter
from .pool import PoolLimits, ServerPool, Warm
from .ratejournal import RateJournal, restore
from .preflight import Checked, Preflight
from .routes import LaunchSpec
from .stopping import UserRemover

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
        self.registry = registry or BuildRegistry(config.max_builds, cancel_unwatched=config.build_on == "kubernetes")
        self.metrics = self.registry.metrics
        self.build_fn = build_fn or self._build
        self.starting: Counter[str] = Counter()  # launches per repository key not yet ready
        self.rate = RateLimiter(config.launch_rate)
        self.rate_journal = RateJournal(Path(config.rate_state)) if config.rate_state else None
        if self.rate_journal is not None:
            restore(self.rate, self.rate_journal, time.time())
        self.checking = 0  # launch pages being checked
        self.remover = UserRemover(hub)
        anonymous = config.mode == "anonymous"
        limits = PoolLimits(config.pool_size if anonymous else 0, config.pool_per_image, config.pool_idle_timeout)
        self.pool = ServerPool(hub, self.remover, limits, config.user_prefix, config.start_timeout)
        self.refused: Counter[str] = Counter()  # launches refused, by reason
        self.holder = f"{socket.gethostname()}-{secrets.token_hex(4)}"  # this replica, in build Leases

    def _build(self, checked: Checked) -> Iterator[Event]:
        def run() -> Iterator[Event]:
            return build(self.preflight.build_request(checked), self.preflight.engine, self.preflight.workspace)

        if self.config.build_on != "kubernetes":
            return run()
        from .kube_builds import one_build_per_image  # two replicas never build one image twice

        return one_build_per_image(self.preflight.engine.api, self.config.build_namespace, checked.image,
                                   self.holder, run)

    async def check(self, spec: LaunchSpec, client: str | None, reserved: int = 0) -> Checked:
        """Everything that can refuse a launch before it starts (raises a LaunchError),
        cheapest first: the service's and the hub's capacity, the client's rate (which
        counts this launch when `client` is given: the launch page counts, its stream
        does not count again), then git. `reserved`: launches of this request already
        counted in `starting`."""
        try:
            self._check_starting(reserved)
            await self._check_servers(canonical_url(spec.url), reserved)
            if client is not None:
                self._take_rate(client)
            checked = await asyncio.get_running_loop().run_in_executor(None, self.preflight.check, spec)
            self.registry.check_capacity(checked.key, needs_build=not checked.image_exists)
        except Exception as err:
            reason = getattr(err, "reason", "internal")
            self.refused[reason] += 1
            if client is not None:  # the launch page's check; a stream's shows in its outcome
                self.metrics.refused.labels(reason).inc()
            raise
        return checked

    async def check_page(self, spec: LaunchSpec, client: str) -> Checked:
        """The launch page's checks; they count as a launch of `client`."""
        self.checking += 1
        try:
            return await self.check(spec, client)
        finally:
            self.checking -= 1

    def _take_rate(self, client: str) -> None:
        now = time.time()
        wait = self.rate.take(client, now)
        if wait is None and self.rate.rate.count and self.rate_journal is not None:
            self.rate_journal.record(client, now)
        if wait is not None:
            raise RateLimited(f"you started {self.rate.rate.count} launches already, the most this server allows "
                              f"({self.rate.rate}); try again in {int(wait // 60) + 1} minutes", retry_after=wait)

    def _check_starting(self, reserved: int) -> None:
        others = sum(self.starting.values()) + self.checking - reserved
        if others >= self.config.max_starting:
            raise TooManyLaunches(f"{others} launches are in progress, the most this server handles at once; "
                                  "try again in a minute")

    async def _check_servers(self, key: str, reserved: int) -> None:
        limit, per_repo = self.config.max_servers, self.config.per_repo_limit
        if not limit and not per_repo:
            return
        pooled = self.pool.members()  # servers started in advance count against --pool-size only
        servers = [entry for entry in await self.hub.active_servers() if entry[0] not in pooled]
        if limit:
            total = len(servers) + sum(self.starting.values()) - reserved
            if total >= limit:
                raise ServerLimitReached(f"this server runs {total} servers, the most it allows ({limit}); "
                                         "try again in a few minutes")
        if per_repo:
            running = sum(1 for _, _, server in servers
                          if canonical_url((server.get("user_options") or {}).get("repo") or "") == key)
            others = running + self.starting[key] - reserved
            if others >= per_repo:
                raise LaunchLimitReached(f"this repository has {others} running or starting launches, "
                                         f"the most this server allows ({per_repo}); try again later")

    async def launch(self, spec: LaunchSpec, user: dict | None) -> AsyncIterator[StreamEvent]:
        """The launch's events, ending with `ready` or `failed`. The launch page that
        gave out the stream's token counted it against the client's rate already."""
        key = canonical_url(spec.url)
        self.starting[key] += 1
        began, outcome = time.monotonic(), "closed"  # "closed": the browser left before the end
        try:
            yield StreamEvent("resolving", f"resolving {spec.display}")
            checked = await self.check(spec, None, reserved=1)
            yield StreamEvent("resolving", f"commit {checked.commit}")
            job, started = self.registry.join_or_start(checked.key, lambda: self.build_fn(checked),
                                                       needs_build=not checked.image_exists)
            if not started:
                yield StreamEvent("building", "following the build of this commit that another launch started")
            async with aclosing(job.follow()) as following:  # leaving counts at once (cancel_unwatched)
                async for event in following:
                    yield event
            built = await job.wait()
            if built.found == IN_REGISTRY:
                self.metrics.registry_skips.inc()
            starting = self._start(spec, checked, built, user)
            async with aclosing(starting):
                async for event in starting:
                    outcome = "ready" if event.phase == "ready" else outcome
                    yield event
        except Exception as err:  # noqa: BLE001 -- every failure ends the stream with its reason
            if isinstance(err, SourceError):  # git's own words may describe the network: log them only
                err = RepoNotFound(safe_source_message(str(err), public_url(spec.url)))
            elif not isinstance(err, DsbuildError):
                log.exception("launch of %s failed", spec.display)
            event = failed(err)
            outcome = event.reason or "failed"
            yield event
        finally:
            self.metrics.launch_ended(outcome, time.monotonic() - began)
            self.starting[key] -= 1
            if self.starting[key] <= 0:
                del self.starting[key]

    def _user_options(self, spec: LaunchSpec, checked: Checked, built: Built) -> dict:
        return {**self.config.user_options, "image": built.image, "repo": canonical_url(spec.url), "ref": checked.commit}

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
        options = self._user_options(spec, checked, built)
        warm = self.pool.take(built.image)
        if warm is not None:
            url = await self._hand_out(warm, spec)
            if url:
                yield launching(f"a server of this image was started in advance for temporary user {warm.user}")
                self.pool.refill(built.image, options)
                yield ready(url)
                return
        name = f"{self.config.user_prefix}{secrets.token_hex(6)}"
        yield launching(f"starting a server for temporary user {name}")
        await self.hub.create_user(name)
        try:
            await self.hub.start_server(name, "", options)
            server_path = f"user/{name}"
            async for event, path in self._follow_start(name, ""):
                server_path = path or server_path
                yield event
            token = await self._token(name)
        except BaseException:
            self.remover.remove_soon(name)  # its server is stopped first; not cut by this stream closing
            raise
        self.pool.refill(built.image, options)  # after this launch's own start, not competing with it
        yield ready(open_url(self.config.hub_url, server_path, spec.open_path, token))

    async def _token(self, name: str) -> str:
        """The temporary user's token: its own servers only."""
        return await self.hub.create_token(name, self.config.token_lifetime, "dsbuild launch link",
                                           [f"access:servers!user={name}"])

    async def _hand_out(self, warm: Warm, spec: LaunchSpec) -> str | None:
        """The ready URL of a warm server, with a token made now for its user; None (and
        the server removed) when the hub no longer has it ready, e.g. the culler took it."""
        try:
            model = await self.hub.get_user(warm.user) or {}
            if ((model.get("servers") or {}).get("") or {}).get("ready"):
                return open_url(self.config.hub_url, warm.path, spec.open_path, await self._token(warm.user))
        except BaseException:
            self.remover.remove_soon(warm.user)
            raise
        log.info("pool: %s is no longer ready; starting a server instead", warm.user)
        self.remover.remove_soon(warm.user)
        return None

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
            "launches_refused": dict(self.refused),
            "clients_limited": self.rate.clients(),
            "users_being_removed": len(self.remover.pending),
            "pool": {"warm": len(self.pool.warm), "starting": len(self.pool.starting), "max": self.pool.limits.size},
        }
