"""The real local hub (`dsbuild hub up`, containers on this Docker engine) and `dsbuild
serve` as a process: temporary users leave nothing behind, servers are fenced in (probed
from inside a real server container), and the service and the hub survive being killed
or restarted.

Marked `docker`: without an engine, the proxy or the hub, the tests skip (fail in CI)."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import socket
import string
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import escapism
import pytest
from dsbuild.builder.engine import DockerEngine
from dsbuild.launch.firewall import chain_name
from dsbuild.launch.hubapi import HubClient
from dsbuild.launch.localhub import Paths, _stop, hub_up
from tests.hubs import stop_service_and_hub
from dsbuild.launch.stopping import UserRemover

from ..launch.conftest import make_repo
from ..hubs import fetch, free_port, start_serve
from ..launch.test_browser import prefix, start_hub  # noqa: F401 (fixture)
from .launch_support import NOTEBOOK, stream_url_of

pytestmark = [pytest.mark.docker]
PROBE = """
import json, socket, sys
result = {}
for name, host, port in json.loads(sys.argv[1]):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); result[name] = "open"
    except OSError as err:
        result[name] = type(err).__name__
    finally:
        s.close()
status = open("/proc/self/status").read()
result["uid"] = [l.split()[1] for l in status.splitlines() if l.startswith("Uid:")][0]
result["no_new_privs"] = [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs:")][0]
result["cap_eff"] = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff:")][0]
print(json.dumps(result))
"""


def docker(*args: str) -> str:
    return subprocess.run([DockerEngine().cli, *args], capture_output=True, text=True, timeout=120).stdout.strip()


def start_service(hub, tmp: Path, port: int, prefix: str) -> subprocess.Popen:  # noqa: F811
    return start_serve(hub, port, tmp, "--image-prefix", prefix, "--launch-rate", "0", "--max-servers", "6",
                       log=f"serve-{port}-{time.monotonic_ns()}.log")


@pytest.fixture(scope="module")
def setup(prefix, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("lifecycle")
    repo = make_repo(tmp / "tiny", {"notebook.ipynb": NOTEBOOK})
    port = free_port()
    hub = start_hub(prefix, tmp / "hub", service_url=f"http://127.0.0.1:{port}/")
    state = {"hub": hub, "tmp": tmp, "repo": repo, "port": port, "prefix": prefix}
    state["service"] = start_service(hub, tmp, port, prefix)
    try:
        yield state
    finally:
        stop_service_and_hub(state["service"], hub, wait=60)
    assert docker("ps", "-aq", "--filter", f"label=io.dsbuild.hub={prefix}") == ""
    assert docker("volume", "ls", "-q", "--filter", f"label=io.dsbuild.hub={prefix}") == ""
    assert docker("network", "ls", "-q", "--filter", f"label=io.dsbuild.hub={prefix}") == ""
    assert chain_name(f"{prefix}-servers") not in subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout


def base(setup) -> str:
    return f"http://127.0.0.1:{setup['port']}"


def open_stream(setup):
    status, body = fetch(f"{base(setup)}/v2/git/{quote(setup['repo'], safe='')}/main")
    assert status == 200, body[-500:]
    return urllib.request.urlopen(base(setup) + stream_url_of(body), timeout=900)


def read_events(response, until=("ready", "failed")):
    events = []
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
            if events[-1]["phase"] in until:
                break
    return events


def launch(setup) -> tuple[str, str]:
    """A launch to its end: (temporary user, ready URL)."""
    with open_stream(setup) as response:
        events = read_events(response)
    assert events[-1]["phase"] == "ready", events[-5:]
    user = events[-1]["url"].split("/user/", 1)[1].split("/", 1)[0]
    return user, events[-1]["url"]


def hub_client(setup) -> HubClient:
    hub = setup["hub"]
    return HubClient(hub.hub_url + "hub/api/", (hub.state_dir / "service_token").read_text().strip())


def user_exists(setup, name: str) -> bool:
    return asyncio.run(hub_client(setup).get_user(name)) is not None


def leftovers(setup, user: str) -> tuple[str, str]:
    """(containers, volumes) with the hub's label named for `user` (DockerSpawner escapes names)."""
    name = escapism.escape(user, safe=set(string.ascii_lowercase + string.digits), escape_char="-").lower()
    label = f"label=io.dsbuild.hub={setup['prefix']}"
    containers = [c for c in docker("ps", "-a", "--filter", label, "--format", "{{.Names}}").split() if name in c]
    volumes = [v for v in docker("volume", "ls", "--filter", label, "--format", "{{.Name}}").split() if name in v]
    return " ".join(containers), " ".join(volumes)


def container_of(setup, user: str) -> str:
    names = leftovers(setup, user)[0].split()
    assert len(names) == 1, (user, docker("ps", "-a", "--format", "{{.Names}} {{.Labels}}"))
    return names[0]


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f}s"
        time.sleep(0.5)


def test_a_server_is_hardened_and_its_user_leaves_nothing_behind(setup):
    user, _ = launch(setup)
    container = container_of(setup, user)
    info = json.loads(docker("inspect", container))[0]
    assert info["Config"]["User"] == "1000:1000"
    host = info["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"] and host["PidsLimit"] == 1024
    assert list(info["NetworkSettings"]["Networks"]) == [f"{setup['prefix']}-servers"]
    assert leftovers(setup, user)[1], "the server has a home volume"
    asyncio.run(UserRemover(hub_client(setup)).remove(user))
    assert not user_exists(setup, user)
    assert leftovers(setup, user) == ("", "")


def test_a_server_reaches_neither_other_servers_nor_the_host_nor_the_metadata_address(setup):
    a, _ = launch(setup)
    b, _ = launch(setup)
    network = f"{setup['prefix']}-servers"
    b_ip = json.loads(docker("inspect", container_of(setup, b)))[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
    gateway = json.loads(docker("network", "inspect", network))[0]["IPAM"]["Config"][0]["Gateway"]
    hub = setup["hub"]
    with socket.create_server(("0.0.0.0", 0)) as host_service:  # a host service listening everywhere
        targets = _targets(b_ip, gateway, hub, setup["port"]) + [("host_service", gateway, host_service.getsockname()[1])]
        result = json.loads(docker("exec", container_of(setup, a), "python3", "-c", PROBE, json.dumps(targets)))
    assert result["uid"].split()[0] == "1000" and result["no_new_privs"] == "1" and int(result["cap_eff"], 16) == 0
    for name in ("other_server", "metadata", "outside", "default_bridge", "proxy_api_on_gateway",
                 "proxy_on_gateway", "launch_service_on_gateway", "host_service", "host_ssh"):
        assert result[name] != "open", (name, result)
    assert result["hub_api"] == "open", result  # needed: token checks and activity go to the hub's API
    for user in (a, b):
        asyncio.run(UserRemover(hub_client(setup)).remove(user))


def _targets(b_ip: str, gateway: str, hub, service_port: int) -> list:
    return [
        ("other_server", b_ip, 8888),
        ("metadata", "169.254.169.254", 80),
        ("outside", "192.0.2.1", 443),  # TEST-NET-1: any address beyond the network
        ("default_bridge", "172.17.0.1", hub.hub_port),
        ("proxy_api_on_gateway", gateway, hub.proxy_api_port),
        ("proxy_on_gateway", gateway, hub.port),
        ("launch_service_on_gateway", gateway, service_port),
        ("host_ssh", gateway, 22),
        ("hub_api", gateway, hub.hub_port),  # the single-user server's own link to the hub
    ]


API_PROBE = """
import json, os, urllib.request, urllib.error
api = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
token = os.environ["JUPYTERHUB_API_TOKEN"]
me, other = os.environ["JUPYTERHUB_USER"], __import__("sys").argv[1]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + path, data=data, method=method, headers={"Authorization": "token " + token})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
result = {}
status, body = call("GET", "/user")
result["whoami"] = [status, (body or {}).get("name"), sorted((body or {}).get("scopes") or [])]
for name, method, path, body in [
    ("list_users", "GET", "/users", None),
    ("read_other", "GET", f"/users/{other}", None),
    ("start_other", "POST", f"/users/{other}/server", {}),
    ("stop_other", "DELETE", f"/users/{other}/server", None),
    ("delete_other", "DELETE", f"/users/{other}", None),
    ("token_for_other", "POST", f"/users/{other}/tokens", {}),
    ("token_for_self", "POST", f"/users/{me}/tokens", {}),
    ("make_admin", "PATCH", f"/users/{me}", {"admin": True}),
    ("create_user", "POST", "/users/binder-made-by-a-server", None),
    ("proxy_table", "GET", "/proxy", None),
    ("services", "GET", "/services", None),
    ("groups", "GET", "/groups", None),
]:
    result[name] = call(method, path, body)[0]
print(json.dumps(result))
"""


def test_a_servers_token_reaches_nothing_beyond_its_own_user(setup):
    """The hub's API is the one port a server reaches (jupyterhub-singleuser needs it): with
    its own token, a server tries the admin API against another user, and is refused."""
    a, _ = launch(setup)
    b, _ = launch(setup)
    result = json.loads(docker("exec", container_of(setup, a), "python3", "-c", API_PROBE, b))
    status, name, scopes = result.pop("whoami")
    assert status == 200 and name == a, result
    assert all(scope.endswith(f"!user={a}") or scope.endswith(f"!server={a}/") for scope in scopes), scopes
    for attempt, code in result.items():
        assert code in (403, 404), (attempt, code, result)
    assert user_exists(setup, b) and not user_exists(setup, "binder-made-by-a-server")
    info = asyncio.run(hub_client(setup).get_user(b))
    assert any(server["ready"] for server in info["servers"].values()), "the other user's server was touched"
    for user in (a, b):
        asyncio.run(UserRemover(hub_client(setup)).remove(user))


def test_the_user_list_is_read_page_by_page(setup):
    client = hub_client(setup)
    names = [f"page-test-{i}" for i in range(7)]

    async def scenario():
        for name in names:
            await client.create_user(name)
        try:
            return [u["name"] async for u in client.users(page_size=2)]
        finally:
            for name in names:
                await client.delete_user(name)

    listed = asyncio.run(scenario())
    assert set(names) <= set(listed) and len(listed) == len(set(listed))


def test_a_stream_closed_during_the_spawn_removes_the_user_once_the_spawn_ends(setup):
    launch(setup)  # the image exists from here on: the next launch goes straight to the spawn
    with open_stream(setup) as response:
        events = read_events(response, until=("launching",))
        user = events[-1]["message"].rsplit(" ", 1)[-1]
    assert user.startswith("binder-"), events[-3:]
    wait_until(lambda: not user_exists(setup, user), 180, f"removing {user}")
    wait_until(lambda: leftovers(setup, user) == ("", ""), 60, f"removing {user}'s container and volume")


def test_serve_killed_mid_launch_leaves_nothing_after_a_restart(setup):
    with open_stream(setup) as response:
        events = read_events(response, until=("launching",))
        user = events[-1]["message"].rsplit(" ", 1)[-1]
        setup["service"].send_signal(signal.SIGKILL)
        setup["service"].wait(30)
        try:
            rest = response.read()  # the stream ends (the connection closed); nothing hangs
        except http.client.IncompleteRead as err:  # cut in the middle of a chunk
            rest = err.partial
    assert b"ready" not in rest
    setup["service"] = start_service(setup["hub"], setup["tmp"], setup["port"], setup["prefix"])
    wait_until(lambda: not user_exists(setup, user), 180, f"the restarted service removing {user}")
    wait_until(lambda: leftovers(setup, user) == ("", ""), 60, f"removing {user}'s container and volume")
    fresh, _ = launch(setup)  # and the restarted service launches
    asyncio.run(UserRemover(hub_client(setup)).remove(fresh))


def test_running_servers_survive_a_restart_of_the_hub(setup):
    user, url = launch(setup)
    container = container_of(setup, user)
    before = docker("inspect", "--format", "{{.Id}}", container)
    hub = setup["hub"]
    assert _stop(Paths(hub.state_dir.resolve()).hub_pid, ("jupyterhub",), 60)
    hub_up(hub, say=print)
    assert docker("inspect", "--format", "{{.Id}} {{.State.Running}}", container) == f"{before} true"
    status, body = fetch(url, headers={"Sec-Fetch-Mode": "navigate"})
    assert status == 200 and "JupyterLab" in body
    asyncio.run(UserRemover(hub_client(setup)).remove(user))
    assert leftovers(setup, user) == ("", "")
