"""The JupyterHub REST edge against a small fake hub over real HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
from dsbuild.launch.errors import HubUnavailable, ServerStartFailed
from dsbuild.launch.hubapi import HubClient, Progress, parse_sse_line
from tornado import web
from tornado.testing import bind_unused_port

from .conftest import serve


class Api(web.RequestHandler):
    def check_xsrf_cookie(self):
        pass

    def prepare(self):
        self.calls = self.settings["calls"]
        self.calls.append((self.request.method, self.request.uri, self.request.body, self.request.headers.get("Authorization")))
        if self.request.headers.get("Authorization") != "token good":
            self.set_status(403)
            self.finish(json.dumps({"status": 403, "message": "Action is not authorized"}))


class Users(Api):
    def get(self):
        self.finish(json.dumps([{"name": "a", "servers": {"": {"ready": True, "user_options": {"repo": "r"}}}}]))


class User(Api):
    def post(self, name):
        self.set_status(201)
        self.finish(json.dumps({"name": name}))


class Server(Api):
    def post(self, name, server=None):
        if name == "refused":
            self.set_status(400)
            self.finish(json.dumps({"status": 400, "message": "refused: 8 CPUs is over the per-server CPU limit"}))
            return
        self.set_status(202)


class ServerProgress(Api):
    async def get(self, name, server=None):
        self.set_header("Content-Type", "text/event-stream")
        for event in ({"progress": 10, "message": "Spawning server..."},
                      {"progress": 100, "ready": True, "message": "Server ready", "url": f"/user/{name}/"}):
            self.write(f"data: {json.dumps(event)}\n\n")
            await self.flush()
            await asyncio.sleep(0.05)


class Tokens(Api):
    def post(self, name):
        self.set_status(201)
        self.finish(json.dumps({"token": "t0k", "scopes": json.loads(self.request.body)["scopes"]}))


def fake_hub():
    calls = []
    app = web.Application([
        (r"/hub/api/users", Users),
        (r"/hub/api/users/([^/]+)", User),
        (r"/hub/api/users/([^/]+)/server", Server),
        (r"/hub/api/users/([^/]+)/servers/([^/]+)", Server),
        (r"/hub/api/users/([^/]+)/server/progress", ServerProgress),
        (r"/hub/api/users/([^/]+)/tokens", Tokens),
    ], calls=calls)
    return app, calls


def run(scenario, token="good"):
    async def main():
        app, calls = fake_hub()
        base, server = await serve(app)
        try:
            return await scenario(HubClient(base + "/hub/api", token)), calls
        finally:
            server.stop()

    return asyncio.run(main())


def test_start_follow_and_token():
    async def scenario(hub):
        await hub.create_user("binder-1")
        await hub.start_server("binder-1", "", {"image": "x:1"})
        progress = [p async for p in hub.progress("binder-1", "", timeout=10)]
        token = await hub.create_token("binder-1", 3600, "launch", ["access:servers!user=binder-1"])
        return progress, token, await hub.active_servers()

    (progress, token, active), calls = run(scenario)
    assert progress == [Progress("Spawning server..."), Progress("Server ready", ready=True, url="/user/binder-1/")]
    assert token == "t0k" and active == [("a", "", {"ready": True, "user_options": {"repo": "r"}})]
    method, uri, body, auth = calls[1]
    assert (method, uri, json.loads(body), auth) == ("POST", "/hub/api/users/binder-1/server", {"image": "x:1"}, "token good")


def test_refusals_and_bad_tokens_are_clear():
    with pytest.raises(ServerStartFailed, match="JupyterHub: refused: 8 CPUs is over"):
        run(lambda hub: hub.start_server("refused", "named", {}))
    with pytest.raises(HubUnavailable, match="refused the service's token.*scopes"):
        run(lambda hub: hub.create_user("x"), token="bad")


def test_a_hub_that_does_not_answer():
    sock, port = bind_unused_port()
    sock.close()

    async def scenario():
        await HubClient(f"http://127.0.0.1:{port}/hub/api", "t", timeout=5).info()

    with pytest.raises(HubUnavailable, match=f"127.0.0.1:{port}"):
        asyncio.run(scenario())


def test_sse_lines():
    assert parse_sse_line('data: {"message": "m", "failed": true}') == Progress("m", failed=True)
    assert parse_sse_line("") is None and parse_sse_line("data: not json") is None and parse_sse_line(": ping") is None
