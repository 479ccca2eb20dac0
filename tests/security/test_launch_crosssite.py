"""The launch stream starts builds and servers: another site's page must not be able to
start one. Headers and tokens in-process, then a real cross-site page in headless
Chromium (Debian's, through Playwright): the attacker's page is served from
http://localhost:P2, the service from http://127.0.0.1:P1 (two sites)."""

from __future__ import annotations

import http.server
import threading
import time
from urllib.parse import quote

import pytest

from ..launch.conftest import config, make_repo
from .launch_support import NOTEBOOK, events_of, git_path, request, service, stream_url_of



@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("DSBUILD_CACHE_DIR", str(tmp_path / "cache"))
    return make_repo(tmp_path / "demo", {"notebook.ipynb": NOTEBOOK})


def page_and_stream(svc, repo):
    status, _, body = request(f"{svc.base}/v2/{git_path(repo)}")
    assert status == 200
    return svc.base + stream_url_of(body)


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of this host is another origin
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:1"},
])
def test_a_stream_request_from_another_site_is_refused_even_with_a_token(repo, headers):
    with service(config()) as svc:
        status, _, body = request(page_and_stream(svc, repo), headers=headers)
    assert status == 403 and events_of(body)[-1]["reason"] == "cross-site"
    assert svc.build.calls == 0 and svc.hub.started == []


def test_a_stream_without_its_pages_token_is_refused(repo, tmp_path):
    other = make_repo(tmp_path / "other", {"notebook.ipynb": NOTEBOOK})
    with service(config()) as svc:
        url = page_and_stream(svc, repo)
        bare = request(f"{svc.base}/build/{git_path(repo)}")
        forged = request(url.rsplit("launch_token=", 1)[0] + "launch_token=9999999999.0123456789abcdef.00")
        elsewhere = request(url.replace(quote(repo, safe=""), quote(other, safe="")))  # another repository's stream
        same_origin = request(url, headers={"Sec-Fetch-Site": "same-origin", "Origin": svc.base})
        again = request(url)  # a token starts one launch
    for status, _, body in (bare, forged, elsewhere, again):
        assert status == 403 and events_of(body)[-1]["reason"] == "cross-site"
    assert same_origin[0] == 200 and events_of(same_origin[2])[-1]["phase"] == "ready"
    assert svc.build.calls == 1 and len(svc.hub.started) == 1


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "same-origin"},  # fetch() by a script
    {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-origin"},  # a frame
    {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "object"},
])
def test_a_launch_page_is_not_handed_to_a_script_or_a_frame(repo, headers):
    """Behind the hub's proxy a user's server is same-origin with the launch page: its
    scripts could read the page (and its stream token) if it were served to them."""
    with service(config()) as svc:
        refused = request(f"{svc.base}/v2/{git_path(repo)}", headers=headers)
        navigation = request(f"{svc.base}/v2/{git_path(repo)}", headers={
            "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"})
    assert refused[0] == 403 and "launch_token" not in refused[2]
    assert "opens only as a page of its own" in refused[2]
    assert navigation[0] == 200 and "launch_token=" in navigation[2]  # a link from anywhere is a launch link
    assert svc.build.calls == 0 and svc.hub.started == []


def test_a_token_is_for_the_user_who_loaded_the_page():
    from dsbuild.launch.crosssite import LaunchTokens, subject

    tokens = LaunchTokens(b"k" * 32)
    path = "git/https%3A%2F%2Fexample.org%2Fr/main"
    mallorys = tokens.issue(subject(path, "mallory"), now=1000)
    assert not tokens.redeem(subject(path, "alice"), mallorys, now=1001)  # in alice's browser: nothing
    assert not tokens.redeem(subject(path, None), mallorys, now=1001)
    assert tokens.redeem(subject(path, "mallory"), mallorys, now=1001)


def test_every_answer_refuses_to_be_framed(repo):
    with service(config()) as svc:
        answers = [request(f"{svc.base}{path}") for path in ("/", "/badge.svg", "/health", "/nothing-here")]
    assert [headers.get("X-Frame-Options") for _, headers, _ in answers] == ["DENY"] * 4


ATTACK = """<!doctype html><html><body><h1>cute cats</h1>
<img src="{stream}">
<iframe src="{stream}"></iframe>
<iframe src="{page}"></iframe>
<script>
window.results = {{}};
var source = new EventSource("{stream}");
source.onerror = function () {{ window.results.eventsource = "error"; source.close(); }};
source.onmessage = function (m) {{ window.results.eventsource = m.data; }};
fetch("{stream}", {{mode: "no-cors", credentials: "include"}}).then(
  function () {{ window.results.nocors = "sent"; }}, function () {{ window.results.nocors = "error"; }});
fetch("{page}").then(function (r) {{ return r.text(); }}).then(
  function (t) {{ window.results.read_page = t.slice(0, 50); }}, function () {{ window.results.read_page = "blocked"; }});
</script></body></html>"""





def serve_page(html: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 -- http.server's name
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.browser
def test_a_cross_site_page_in_chromium_starts_nothing_and_the_real_page_does(repo, chromium):
    with service(config()) as svc:
        stream = f"{svc.base}/build/{git_path(repo)}"
        page_url = f"{svc.base}/v2/{git_path(repo)}"
        attacker = serve_page(ATTACK.format(stream=stream, page=page_url))
        try:
            page = chromium.new_page()
            page.goto(f"http://localhost:{attacker.server_port}/")  # another site than 127.0.0.1
            page.wait_for_function("() => window.results.eventsource && window.results.nocors "
                                   "&& window.results.read_page", timeout=30_000)
            results = page.evaluate("() => window.results")
            # with a stolen token too: a token from the real page, used from the attacker's page
            token_stream = page_and_stream(svc, repo)
            page.evaluate("(url) => { new EventSource(url); fetch(url, {mode: 'no-cors'}); }", token_stream)
            time.sleep(2)
            assert svc.build.calls == 0 and svc.hub.started == [], results
            assert results["eventsource"] == "error" and results["read_page"] == "blocked"
            # the control: the service's own launch page, in the same browser, starts the launch
            own = chromium.new_page()
            own.goto(page_url)
            for _ in range(120):
                if svc.hub.started:
                    break
                time.sleep(0.25)
        finally:
            attacker.shutdown()
    assert svc.build.calls == 1 and len(svc.hub.started) == 1


def test_the_own_origin_over_https_is_accepted_behind_a_tls_proxy(repo):
    with service(config()) as svc:
        url = page_and_stream(svc, repo)
        host = svc.base.split("://", 1)[1]
        status, _, body = request(url, headers={"Origin": f"https://{host}", "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and events_of(body)[-1]["phase"] == "ready"
