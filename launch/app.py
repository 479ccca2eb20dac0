"""The Tornado application: thin handlers over routes (parsing), the launcher and templates.

    GET /                       home: a form for repository, ref and path; the link and badge
    GET /v2/PROVIDER/SPEC       launch page (checks first: a bad link is a 4xx page, no build)
    GET /build/PROVIDER/SPEC    the launch's event stream (text/event-stream)
    GET /badge.svg              the launch badge
    GET /health                 JSON: running builds, launches starting
    GET /metrics                Prometheus metrics (metrics.py)
    GET /oauth_callback         authenticated mode: JupyterHub OAuth
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from contextlib import aclosing
from urllib.parse import urlencode, urlsplit

from dsbuild.builder.errors import DsbuildError
from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from tornado import web
from tornado.iostream import StreamClosedError

from .config import LaunchConfig
from .crosssite import TOKEN_ARG, LaunchTokens, cross_site_reason, origin_of, page_request_reason, subject
from .errors import CrossSiteRequest, LaunchError
from .events import KEEPALIVE, StreamEvent, failed
from .hubapi import HubClient
from .launcher import Launcher
from .limits import client_key
from .routes import (
    LaunchSpec,
    badge_markdown,
    launch_link,
    parse_launch,
    spec_for_repository,
    stream_path,
)
from .templating import render_page

log = logging.getLogger("dsbuild.launch")
KEEPALIVE_SECONDS = 15


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def hub_auth(self):  # type: ignore[override]
        return self.settings["hub_auth"]

    @property
    def launcher(self) -> Launcher:
        return self.settings["launcher"]

    @property
    def config(self) -> LaunchConfig:
        return self.launcher.config

    def get_current_user(self):
        if self.config.mode == "anonymous":
            return None
        return super().get_current_user()

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        # Nothing of this service is a frame (behind the hub's proxy a frame would be
        # same-origin with users' servers, and readable by them).
        self.set_header("X-Frame-Options", "DENY")

    def user_name(self) -> str | None:
        user = self.current_user
        return user.get("name") if isinstance(user, dict) else None

    def client(self) -> str:
        """Who this request counts as (limits.py): the peer, or what a trusted proxy forwarded."""
        return client_key(self.request.remote_ip or "", self.request.headers, self.config.trusted_proxies)

    def public_base(self) -> str:
        """This service's public URL (ending in '/'), for links and badges."""
        if self.config.public_url:
            return self.config.public_url
        return f"{self.request.protocol}://{self.request.host}{self.config.base_url}"

    def args(self) -> dict[str, str]:
        return {k: v[-1].decode(errors="replace") for k, v in self.request.query_arguments.items() if v}

    def spec_path(self, prefix: str) -> str:
        """The raw (still percent-encoded) path after base_url + prefix."""
        path = self.request.path
        return path[len(self.config.base_url) + len(prefix):]

    def page(self, name: str, **values) -> None:
        nonce = secrets.token_urlsafe(16)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"))
        self.finish(render_page(name, base_url=self.config.base_url, mode=self.config.mode, nonce=nonce, **values))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, DsbuildError):
            message = str(error)
        elif isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message % error.args if error.args else error.log_message
        else:
            message = self._reason
        self.page("error.html", status=status_code, title=self._reason, message=message)

    def fail(self, error: LaunchError) -> None:
        self.set_status(error.status)
        if error.retry_after:
            self.set_header("Retry-After", str(error.retry_after))
        self.page("error.html", status=error.status, title=self._reason, message=str(error))


class HomeHandler(BaseHandler):
    def get(self) -> None:
        args = self.args()
        repo, ref = args.get("repo", ""), args.get("ref", "")
        path, kind = args.get("path", ""), args.get("kind", "file")
        link = badge = error = None
        if repo.strip():
            try:
                spec = spec_for_repository(repo, ref, path, kind, self.config.allowed_schemes)
                link = launch_link(self.public_base(), spec)
                badge = badge_markdown(self.public_base(), link)
            except LaunchError as err:
                self.set_status(err.status)
                error = str(err)
        self.page("home.html", repo=repo, ref=ref, path=path, kind=kind, link=link, badge=badge, error=error,
                  schemes=self.config.allowed_schemes)


class LaunchPageHandler(BaseHandler):
    async def get(self, _rest: str) -> None:
        reason = page_request_reason(self.request.headers)
        if reason is not None:
            log.warning("refused a launch page to %s: %s", self.client(), reason)
            self.fail(CrossSiteRequest(reason))
            return
        if self.config.mode == "authenticated" and not self.current_user:
            self.redirect(self.get_login_url())  # JupyterHub's OAuth; comes back to this page
            return
        try:
            spec = parse_launch(self.spec_path("v2/"), self.args(), self.config.allowed_schemes)
            checked = await self.launcher.check_page(spec, self.client())
        except LaunchError as err:
            self.fail(err)
            return
        stream_url = self.config.base_url + stream_path(spec)
        extra = {TOKEN_ARG: self.settings["tokens"].issue(subject(spec.spec_path(), self.user_name()), time.time())}
        if self.current_user:  # EventSource is a cross-mode fetch: JupyterHub's cookie auth wants the xsrf token
            extra["_xsrf"] = self.xsrf_token
        stream_url += ("&" if "?" in stream_url else "?") + urlencode(extra)
        self.page("launch.html", spec=spec, commit=checked.commit, image_exists=checked.image_exists,
                  stream_url=stream_url, user=self.current_user, pushes=bool(self.config.registry))


class BuildStreamHandler(BaseHandler):
    closed = False

    def on_connection_close(self) -> None:
        self.closed = True

    async def send(self, text: str) -> None:
        if self.closed:
            raise StreamClosedError()
        self.write(text)
        await self.flush()

    async def keepalive(self) -> None:
        while not self.closed:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await self.send(KEEPALIVE)
            except StreamClosedError:
                return

    def refuse(self, error: LaunchError) -> None:
        self.set_status(error.status)
        self.finish(failed(error).sse())

    def cross_site(self, spec: LaunchSpec) -> str | None:
        """Why this stream request is not from this service's launch page (crosssite.py), or None."""
        origins = [origin_of(self.public_base())]
        if not self.config.public_url:  # behind a TLS proxy the browser's scheme is not the connection's
            origins += [f"{scheme}://{self.request.host}" for scheme in ("http", "https")]
        reason = cross_site_reason(self.request.headers, origins)
        token = self.args().get(TOKEN_ARG, "")
        if reason is None and not self.settings["tokens"].redeem(subject(spec.spec_path(), self.user_name()), token,
                                                                 time.time()):
            reason = "the launch stream needs the token of its launch page; open the launch link again"
        return reason

    async def get(self, _rest: str) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        user = self.current_user
        if self.config.mode == "authenticated" and not user:
            await self.send(StreamEvent("failed", "log in to JupyterHub first", reason="login").sse())
            return
        try:
            spec = parse_launch(self.spec_path("build/"), self.args(), self.config.allowed_schemes)
        except LaunchError as err:
            self.refuse(err)
            return
        reason = self.cross_site(spec)
        if reason is not None:
            log.warning("refused a launch stream from %s: %s", self.client(), reason)
            self.refuse(CrossSiteRequest(reason))
            return
        pinger = asyncio.ensure_future(self.keepalive())
        events = self.launcher.launch(spec, user)
        try:
            async with aclosing(events):
                async for event in events:
                    await self.send(event.sse())
        except StreamClosedError:
            log.info("stream of %s closed by the browser", spec.display)
        finally:
            pinger.cancel()


class BadgeHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.finish(render_page("badge.svg.j2", label="launch", message="dsbuild"))


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": "ok", "mode": self.config.mode, **self.launcher.stats()}))


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", self.launcher.metrics.content_type)
        self.finish(self.launcher.metrics.exposition())


class CallbackHandler(HubOAuthCallbackHandler):
    @property
    def hub_auth(self):  # type: ignore[override]
        return self.settings["hub_auth"]


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise web.HTTPError(404, "there is nothing at %s; launch links start with /v2/", self.request.path)


def hub_oauth(config: LaunchConfig) -> HubOAuth | None:
    if config.mode != "authenticated":
        return None
    hub = urlsplit(config.hub_url)
    return HubOAuth(
        api_url=config.hub_api_url.rstrip("/"),
        api_token=config.hub_token,
        oauth_client_id=f"service-{config.service_name}",
        oauth_redirect_uri=config.oauth_redirect_url,
        base_url=config.base_url,
        hub_host=f"{hub.scheme}://{hub.netloc}",
        hub_prefix=hub.path.rstrip("/") + "/hub/",
        access_scopes={f"access:services!service={config.service_name}"},
    )


def make_app(config: LaunchConfig, launcher: Launcher | None = None) -> web.Application:
    launcher = launcher or Launcher(config, HubClient(config.hub_api_url, config.hub_token))
    base = config.base_url
    handlers = [
        (base, HomeHandler),
        (base + r"v2/(.*)", LaunchPageHandler),
        (base + r"build/(.*)", BuildStreamHandler),
        (base + "badge.svg", BadgeHandler),
        (base + "health", HealthHandler),
        (base + "metrics", MetricsHandler),
        (base + "oauth_callback", CallbackHandler),
    ]
    return web.Application(
        handlers,
        default_handler_class=NotFoundHandler,
        launcher=launcher,
        tokens=LaunchTokens(secrets.token_bytes(32)),
        hub_auth=hub_oauth(config),
        cookie_secret=secrets.token_bytes(32),
        xsrf_cookies=False,  # GET only; nothing here changes state on a POST
    )
