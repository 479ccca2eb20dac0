"""The whole path on this machine: `dsbuild hub up` (JupyterHub, configurable-http-proxy,
containers on the local Docker engine), `dsbuild serve` as a process, a real build of an
example repository, and Debian's Chromium through Playwright opening a launch link.

Screenshots go to tests/artifacts/. In CI (CI=true) a missing Docker engine, proxy or
Chromium fails these tests; elsewhere they are skipped with the reason. Everything made
here is removed: the temporary users (through the hub's API), their containers (the hub
stops them; leftovers by label), the images (by name prefix), the hub, proxy and service."""

from __future__ import annotations

import html
import json
import re
import os
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import EngineUnavailable
from dsbuild.launch.errors import HubError
from dsbuild.launch.hubconfig import HubOptions
from dsbuild.launch.localhub import find_proxy, hub_up, remove_containers

from tests.conftest import EXAMPLES, NOTEBOOKS

from tests.browser import ARTIFACTS, need, notebook_open
from tests.hubs import delete_users, fetch, free_port, start_serve, stop_service_and_hub

from .conftest import commit, make_repo

pytestmark = [pytest.mark.docker, pytest.mark.browser]

def stream(url: str, timeout: float = 600) -> list[dict]:
    """Read a launch's event stream to its end."""
    events = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["phase"] in ("ready", "failed"):
                    break
    return events


@pytest.fixture(scope="module")
def prefix():
    try:
        DockerEngine().ping()
    except EngineUnavailable as err:
        need(False, f"no Docker engine ({err}); scripts/test.sh starts one")
    value = f"dsbuild-test-launch-{uuid.uuid4().hex[:8]}"
    yield value
    remove_containers(DockerEngine(), value)
    cli = DockerEngine().cli
    images = subprocess.run([cli, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True).stdout.split()
    mine = [image for image in images if image.startswith(value)]
    if mine:
        subprocess.run([cli, "image", "rm", "-f", *mine], capture_output=True)


def start_hub(prefix: str, state: Path, **options) -> HubOptions:
    try:
        find_proxy()
    except HubError as err:
        need(False, str(err))
    hub = HubOptions(state_dir=state, port=free_port(), proxy_api_port=free_port(), hub_port=free_port(),
                     container_prefix=prefix, hub_label=prefix, cull_timeout=3600, **options)
    try:
        hub_up(hub, say=print, password="launch-test")
    except HubError as err:
        need(False, f"the local hub did not start: {err}")
    return hub


def start_service(hub: HubOptions, prefix: str, tmp: Path, port: int) -> subprocess.Popen:
    """`dsbuild serve` as its own process, file:// repositories enabled, at most 1 MiB."""
    return start_serve(hub, port, tmp, "--image-prefix", prefix, "--max-repo-size", "1Mi", "--per-repo-limit", "4",
                       "--launch-rate", "100/hour")


@contextmanager
def hub_and_service(prefix: str, tmp: Path, **options):
    port = free_port()
    hub = start_hub(prefix, tmp / "hub", service_url=f"http://127.0.0.1:{port}/", **options)
    service = None
    try:
        service = start_service(hub, prefix, tmp, port)
        yield hub, f"http://127.0.0.1:{port}"
    finally:
        stop_service_and_hub(service, hub)


@pytest.fixture(scope="module")
def hub_service(prefix, tmp_path_factory):
    """An anonymous hub (temporary users, like mybinder.org) and its launch service."""
    with hub_and_service(prefix, tmp_path_factory.mktemp("anonymous")) as pair:
        yield pair


@pytest.fixture(scope="module")
def service(hub_service):
    return hub_service[1]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """examples/sketches with notebooks/sketches.ipynb, as a git repository."""
    path = tmp_path_factory.mktemp("repos") / "sketches"
    files = {p.name: p.read_bytes() for p in (EXAMPLES / "sketches").iterdir()}
    make_repo(path, {**files, "sketches.ipynb": (NOTEBOOKS / "sketches.ipynb").read_bytes()})
    return path


@pytest.fixture
def clean_users(hub_service):
    yield
    delete_users(hub_service[0])





def link(service: str, repo: Path, route: str = "v2", ref: str = "main", query: str = "?labpath=sketches.ipynb") -> str:
    return f"{service}/{route}/git/{quote(repo.as_uri(), safe='')}/{ref}{query}"


def stream_link(service: str, page_link: str) -> str:
    """The event stream (with its one-use token) that the launch page at `page_link` opens."""
    status, body = fetch(page_link)
    assert status == 200, body[-500:]
    match = re.search(r'data-stream="([^"]+)"', body)
    assert match, body[-500:]
    return service + html.unescape(match.group(1))


def builds_started(service: str) -> int:
    return json.loads(fetch(service + "/health")[1])["builds"]["started"]


def test_launch_link_opens_the_notebook_in_jupyterlab(service, example, clean_users, chromium):
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(link(service, example))
    expect(page.locator("h1")).to_have_text("Launching sketches")
    expect(page.locator("#log")).to_contain_text("[building] step", timeout=120_000)  # the build's log, live
    page.screenshot(path=ARTIFACTS / "launch-page.png")
    notebook = notebook_open(page, "sketches.ipynb")
    first = notebook.locator(".jp-CodeCell").first
    first.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")  # runs the notebook's first cell (numpy, matplotlib)
    expect(first.locator(".jp-InputPrompt")).to_have_text("[1]:", timeout=60_000)
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # a new cell right after it, using what it defined
    page.keyboard.press("Enter")
    page.keyboard.type("print('dsbuild', 6 * 7, len(hashes('x', 5, 100)))")
    page.keyboard.press("Shift+Enter")
    expect(notebook.locator(".jp-OutputArea-output").filter(has_text="dsbuild 42 5")).to_have_count(1)
    first.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "launch-jupyterlab.png")


def test_two_simultaneous_launches_build_once(service, example, clean_users):
    (example / "CHANGES.md").write_text("a new commit, so that it is built\n")
    sha = commit(example, "second")
    before = builds_started(service)
    results: list[list[dict]] = [[], []]

    def launch(i: int) -> None:
        results[i] = stream(stream_link(service, link(service, example, ref=sha)))

    # Both at once: a code-only commit is appended in a fraction of a second, so a second
    # launch started later may find the first build finished (and start a job that skips).
    threads = [threading.Thread(target=launch, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert all(r and r[-1]["phase"] == "ready" for r in results), [r[-3:] for r in results]
    assert builds_started(service) - before == 1
    following = [any("following the build" in e["message"] for e in r) for r in results]
    assert sorted(following) == [False, True]
    built = [[e["message"] for e in r if e["message"].startswith("built ")] for r in results]
    assert built[0] == built[1] and len(built[0]) == 1  # the one build, seen by both
    urls = {r[-1]["url"] for r in results}
    assert len(urls) == 2  # two temporary users
    status, body = fetch(urls.pop(), headers={"Sec-Fetch-Mode": "navigate"})
    assert status == 200 and "JupyterLab" in body


def test_bad_inputs_get_a_clear_page_and_start_no_build(service, example, tmp_path, prefix):
    big = tmp_path / "big"
    make_repo(big, {"data.bin": os.urandom(2 * 2**20), "a.ipynb": "{}"})
    before = builds_started(service)
    cases = [
        ("/v2/zenodo/10.5281/zenodo.1234", 404, "not supported here"),
        ("/v2/gh/example-org/no-network/HEAD", 404, "cannot read repository https://github.com/example-org/no-network"),
        ("/v2/gl/group%2Fproject/main", 404, "cannot read repository https://gitlab.com/group/project"),
        (link("", example, ref="no-such-branch"), 404, "not found in file://"),
        (link("", example, query="?labpath=../../../etc/passwd"), 400, "labpath must not contain"),
        (link("", example, query="?urlpath=//evil.example/"), 400, "not another site"),
        (f"/v2/git/{quote('ssh://git@host/repo.git', safe='')}/main", 403, "ssh:// repositories are not enabled"),
        (link("", big, query=""), 413, "more than this server builds (1.0 MiB)"),
    ]
    for path, status, words in cases:
        got, body = fetch(service + path)
        assert got == status, (path, body[-500:])
        assert words in body.replace("&#39;", "'"), (path, body[-800:])
        assert "Nothing was built" in body
    assert builds_started(service) == before
    images = subprocess.run([DockerEngine().cli, "image", "ls", "-q", f"{prefix}-big"], capture_output=True, text=True)
    assert images.stdout.strip() == ""


def test_authenticated_launch_lands_in_the_users_named_server(prefix, example, chromium, tmp_path):
    """A hub with logins: the launch page sends the browser through JupyterHub's OAuth,
    then starts the logged-in user's named server for this repository and commit."""
    from playwright.sync_api import expect

    # A hub of its own prefix: its servers' network is its own, so stopping it leaves the
    # module's anonymous hub (whose API listens on that hub's network) running.
    with hub_and_service(f"{prefix}-auth", tmp_path, mode="authenticated", authenticator="dummy") as (hub, service):
        page = chromium.new_page(viewport={"width": 1280, "height": 860})
        page.goto(link(service, example))
        expect(page.locator("#username_input")).to_be_visible(timeout=30_000)  # the hub's login page
        page.fill("#username_input", "alice")
        page.fill("#password_input", "launch-test")
        page.click("#login_submit")
        notebook = notebook_open(page, "sketches.ipynb")
        assert "/user/alice/sketches-" in page.url  # alice's named server for this repository and commit
        expect(notebook.locator(".jp-CodeCell").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "launch-authenticated.png")
