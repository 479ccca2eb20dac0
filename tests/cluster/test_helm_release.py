"""The Helm chart installed into the test cluster with its real node, once for the module
(`helm install` with the launch service and both image cleaners on):

- the launch browser test through the release: Chromium logs in through the release's
  proxy, opens a launch link of the release's `dsbuild serve` at the proxy's
  /services/dsbuild/ route (building on the node's Docker engine), watches the build log
  and lands in JupyterLab, served through the release's proxy from a pod on the real
  node; scripts in that JupyterLab (the same origin now) get no launch page and cannot
  use another user's stream token;
- the image cleaners as pods: the registry cleaner's Job (from its CronJob) and the node
  cleaner's DaemonSet pod remove images by age and disk use per the values, and keep
  young ones, ones a container uses and ones dsbuild did not build;
- a user logs in and starts a server through the hub's REST API (it answers through the
  proxy); `helm upgrade` with a changed catalog restarts the hub but keeps the server
  running and its volume; `helm uninstall` keeps the user's volume and the hub's
  database (last: it ends the release).

The test cluster has no kube-proxy and no DNS, so the release runs with
network.mode=hostNetwork (docs/helm.md): the hub and proxy on the node's network, the
hub reaching the API server at 127.0.0.1. Needs the real node: run under the lock,
`flock /work/wt/_brief/realnode.lock .venv/bin/pytest tests/cluster/test_helm_release.py`."""

from __future__ import annotations

import subprocess
import uuid
from datetime import datetime, timedelta, timezone
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.browser import ARTIFACTS, notebook_open
from tests.helm.chart import Helm, build_helm

from . import realnode
from dsbuild.launch.build_daemon import BUILD_BRIDGE, DAEMON_LABELS
from dsbuild.launch.kube_builds import ROLE, ROLE_LABEL

from .helmrelease import (PASSWORD, ClusterBuilds, Hub, Setup, build_hub_image, delete_image, install, push_image,
                          registry_tags, release_values)
from .test_cluster_builds import NODE_CGROUP, build_image, daemon_root  # noqa: F401 -- build_image: a fixture

pytestmark = pytest.mark.cluster

FULL = "rel-dsbuild"  # the release's objects' name prefix (release "rel")


def free_port() -> int:
    from dsbuild.builder.run import free_port as free
    return free()


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    from dsbuild.builder.engine import find_docker_cli

    return subprocess.run([find_docker_cli(), *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture(scope="module")
def helm(cluster, tmp_path_factory) -> Helm:
    """helm (deploy/helm/build.sh) with the cluster's admin kubeconfig."""
    return Helm(build_helm(), tmp_path_factory.mktemp("helm-home"), cluster.kubeconfig)


@pytest.fixture(scope="module")
def hub_image(real_node) -> str:
    """The chart's image, built from deploy/hub/Dockerfile and pushed to the cluster's registry."""
    return build_hub_image(real_node.registry)


@pytest.fixture(scope="module")
def release_namespace(cluster):
    name = f"dsbuild-helm-{uuid.uuid4().hex[:6]}"
    # No PodSecurity level: hostNetwork (the test cluster's mode) is "privileged".
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster("delete", "pods,pvc", "--all", "-n", name, "--wait=true", "--timeout=90s", check=False)
    cluster.recycle_volumes(name)
    cluster("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)


@pytest.fixture(scope="module")
def setup(hub_image, node_image, tmp_path_factory) -> Setup:
    suffix = uuid.uuid4().hex[:6]
    ports = {"hub": free_port(), "proxy": free_port(), "api": free_port(), "launch": free_port()}
    repo = realnode.make_repo(tmp_path_factory.mktemp("helm-launch") / "launched")
    setup = Setup(hub_image, node_image, ports, f"dsbuild-test-hrel-{suffix}", f"dsbuild-test-hclean-{suffix}", repo)
    yield setup
    # What the launch service built and the cleaner test pulled, on the machine's engine.
    docker("container", "rm", "-f", f"{setup.clean_prefix}-holder", check=False)
    images = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    mine = [i for i in images if setup.launch_prefix in i or setup.clean_prefix in i]
    if mine:
        docker("image", "rm", *mine, check=False)


@pytest.fixture(scope="module")
def release(cluster, real_node, helm, release_namespace, setup) -> str:
    """The release "rel", installed once for the module; its namespace."""
    install(helm, release_namespace, release_values(cluster, real_node, setup, "Test notebooks"))
    hub = Hub(f"http://127.0.0.1:{setup.ports['proxy']}/")
    cluster.wait_for(hub.answers, "the hub through the release's proxy", timeout=120)
    yield release_namespace
    helm("uninstall", "rel", "--namespace", release_namespace, "--wait", "--timeout", "5m", check=False, timeout=400)


def pod_uid(cluster, namespace: str, prefix: str) -> str:
    pods = [p for p in cluster.get("pod", namespace=namespace) if p["metadata"]["name"].startswith(prefix)]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]["metadata"]["uid"]


LAUNCH_ROUTE = "services/dsbuild/"  # the proxy's route to the release's `dsbuild serve`


def logged_in_page(chromium, proxy: str, user: str):
    """A new browser page, logged in to the release's hub through its proxy's login form."""
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(proxy + "hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url("**/hub/**", timeout=60_000)
    return page


@pytest.mark.browser
def test_a_launch_link_through_the_release_shows_the_build_and_lands_in_jupyterlab(
        cluster, real_node, release, setup, chromium):
    from playwright.sync_api import expect

    proxy = f"http://127.0.0.1:{setup.ports['proxy']}/"
    page = logged_in_page(chromium, proxy, "dora")

    link = f"{proxy}{LAUNCH_ROUTE}v2/git/{quote(setup.repo.as_uri(), safe='')}/main?labpath={realnode.NOTEBOOK}"
    page.goto(link)  # the launch service through the hub's proxy, on the hub's origin
    expect(page.locator("h1")).to_have_text("Launching launched", timeout=60_000)
    assert page.url.startswith(proxy + LAUNCH_ROUTE + "v2/")  # logged in by the hub's OAuth, through the route
    doras_stream = page.locator("body").get_attribute("data-stream")
    assert doras_stream.startswith("/" + LAUNCH_ROUTE + "build/")
    expect(page.locator("#log")).to_contain_text("[building] step", timeout=300_000)  # the build's log, live
    notebook_open(page, realnode.NOTEBOOK, f"{proxy}user/dora/**lab/tree/{realnode.NOTEBOOK}**",
                  "From the repository.", launch_s=900)
    page.screenshot(path=ARTIFACTS / "helm-release-launch-jupyterlab.png")
    pods = [p for p in cluster.get("pod", namespace=release) if p["metadata"]["name"].startswith("jupyter-dora")]
    assert [p["spec"]["nodeName"] for p in pods] == [real_node.name]
    image = pods[0]["spec"]["containers"][0]["image"]
    assert image.startswith(f"{real_node.registry}/{setup.launch_prefix}")  # built and pushed by the release
    badge = Hub(proxy).session.get(f"{proxy}{LAUNCH_ROUTE}badge.svg", timeout=30)
    assert badge.status_code == 200 and badge.headers["Content-Type"].startswith("image/svg+xml")

    # Dora's JupyterLab is on the launch page's origin now: its scripts (a notebook's
    # output, an extension) are the attacker. They get no launch page, and a token that
    # mallory took from her own launch page starts nothing as dora, even with dora's
    # xsrf token (which a same-origin script could get).
    mallory = Hub(proxy)
    mallory.log_in("mallory")
    mallorys_page = mallory.session.get(link, timeout=120)  # through the hub's OAuth, as mallory
    assert mallorys_page.status_code == 200 and mallorys_page.url.startswith(proxy + LAUNCH_ROUTE), mallorys_page.url
    mallorys_stream = re.search(r'data-stream="([^"]+)"', mallorys_page.text).group(1).replace("&amp;", "&")
    doras_xsrf = parse_qs(urlsplit(doras_stream).query)["_xsrf"][0]
    forged = mallorys_stream.split("&_xsrf=")[0] + "&_xsrf=" + quote(doras_xsrf)
    attack = page.evaluate("""async ([link, forged, used]) => {
        const read = async (url) => { const r = await fetch(url); return [r.status, await r.text()]; };
        return {page: await read(link), forged: await read(forged), reused: await read(used)};
    }""", [link, forged, doras_stream])
    assert attack["page"][0] == 403 and "launch_token" not in attack["page"][1], attack["page"]
    for name in ("forged", "reused"):
        status, body = attack[name]
        assert status == 403 and '"reason": "cross-site"' in body, (name, body[:300])
    after = [p for p in cluster.get("pod", namespace=release) if p["metadata"]["name"].startswith("jupyter-dora")]
    assert [p["metadata"]["uid"] for p in after] == [pods[0]["metadata"]["uid"]]  # nothing more started as dora
    page.close()


@pytest.mark.browser
def test_with_builds_on_the_cluster_a_launch_link_builds_in_a_pod_and_lands_in_jupyterlab(
        cluster, real_node, helm, release, setup, build_image, chromium):  # noqa: F811 -- the fixture
    """`helm upgrade` to launch.buildOn=kubernetes: the release's launch service, with
    the chart's ServiceAccount and Role only, puts its build daemon on the real node and
    makes a build pod, which build a repository the registry does not have and push it;
    the server runs it, reached through the proxy."""
    from playwright.sync_api import expect

    repo = realnode.make_repo(setup.repo.parent / "cluster-built")  # a new image, built from scratch
    # This launch service runs as uid 1000 (the docker one as root): the mounted folder and
    # this repository must be its to read (git refuses a repository another user owns).
    setup.repo.parent.chmod(0o755)
    subprocess.run(["chown", "-R", "1000:1000", str(repo)], check=True)
    launch_before = pod_uid(cluster, release, f"{FULL}-launch-")
    builds = ClusterBuilds(build_image, NODE_CGROUP, str(daemon_root(release)))
    install(helm, release, release_values(cluster, real_node, setup, "Test notebooks", builds), verb="upgrade")
    cluster.wait_for(lambda: pod_uid(cluster, release, f"{FULL}-launch-") != launch_before, "a new launch pod")
    proxy = f"http://127.0.0.1:{setup.ports['proxy']}/"
    page = logged_in_page(chromium, proxy, "erin")
    try:
        page.goto(f"{proxy}{LAUNCH_ROUTE}v2/git/{quote(repo.as_uri(), safe='')}/main?labpath={realnode.NOTEBOOK}")
        expect(page.locator("h1")).to_have_text("Launching cluster-built", timeout=60_000)
        expect(page.locator("#log")).to_contain_text("[building] step", timeout=600_000)
        page.wait_for_url(f"{proxy}user/erin/**lab/tree/{realnode.NOTEBOOK}**", timeout=1_500_000)
        expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_contain_text("From the repository.",
                                                                                        timeout=120_000)
        page.screenshot(path=ARTIFACTS / "helm-release-cluster-build-jupyterlab.png")
        scheduled = cluster("get", "events", "-n", release, "--field-selector", "reason=Scheduled", "-o",
                            "jsonpath={.items[*].involvedObject.name}").split()
        assert [p for p in scheduled if p.startswith(f"build-{setup.launch_prefix}")], scheduled  # a build pod
        cluster.wait_for(lambda: not cluster.get("pods", namespace=release, selector=f"{ROLE_LABEL}={ROLE}"),
                         "the build pod to be gone", timeout=120)
        pods = [p for p in cluster.get("pod", namespace=release) if p["metadata"]["name"].startswith("jupyter-erin")]
        assert [p["spec"]["nodeName"] for p in pods] == [real_node.name]
        name, tag = pods[0]["spec"]["containers"][0]["image"].removeprefix(real_node.registry + "/").split(":")
        assert name.startswith(setup.launch_prefix) and registry_tags(real_node.registry, name) == [tag]  # pushed
    finally:
        page.close()
        erin = Hub(proxy)
        erin.log_in("erin")
        for server in erin.api("get", "users/erin").json()["servers"]:  # room for the next tests' servers
            erin.api("delete", f"users/erin/servers/{server}" if server else "users/erin/server")
        # The build daemon is the service's, not the release's: gone with its state and bridge.
        selector = ",".join(f"{k}={v}" for k, v in DAEMON_LABELS.items())
        cluster("delete", "daemonset,configmap,secret", "-n", release, "-l", selector, "--wait=true", check=False)
        subprocess.run(["ip", "link", "delete", BUILD_BRIDGE], capture_output=True)  # on the node's network
        subprocess.run(["rm", "-rf", "--one-file-system", builds.daemon_root], check=False)


def rfc3339(age: timedelta) -> str:
    return (datetime.now(timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_image_cleaners_run_as_pods_and_remove_by_age_and_disk_use(cluster, real_node, release, setup):
    registry, ns = real_node.registry, release
    reg, node = f"{setup.clean_prefix}-reg", f"{setup.clean_prefix}-node"  # what each cleaner may touch
    # The registry (maxAge 30d, maxDisk 2.5m): an old image, three young ones of 1 MiB
    # (3 MiB together), and an old one dsbuild did not build.
    ages = {"old": timedelta(days=400), "young1": timedelta(hours=3), "young2": timedelta(hours=2),
            "young3": timedelta(hours=1)}
    for name, age in ages.items():
        push_image(registry, f"{reg}-{name}", "1", rfc3339(age), 2**20)
    push_image(registry, f"{reg}-foreign", "1", rfc3339(timedelta(days=400)), 1024, built_by_dsbuild=False)
    # The node's engine (maxAge 30d): two old images, one of them held by a container, and
    # a young one; pulled from the registry, so their build dates are the ones made here.
    node_ages = {"old": timedelta(days=400), "held": timedelta(days=400), "young": timedelta(hours=1)}
    for name, age in node_ages.items():
        push_image(registry, f"{node}-{name}", "1", rfc3339(age), 1024)
        docker("pull", "-q", f"{registry}/{node}-{name}:1")
        docker("tag", f"{registry}/{node}-{name}:1", f"{node}-{name}:1")
        docker("image", "rm", f"{registry}/{node}-{name}:1")
    docker("container", "create", "--name", f"{setup.clean_prefix}-holder", f"{node}-held:1", "/payload")
    try:
        # The registry cleaner: a Job from its CronJob, on the real node.
        cluster("create", "job", "-n", ns, "--from", f"cronjob/{FULL}-registry-cleaner", "cleaner-now")
        cluster("wait", "-n", ns, "--for=condition=complete", "job/cleaner-now", "--timeout=300s")
        log = cluster("logs", "-n", ns, "job/cleaner-now")
        assert "removed 2 (" in log and "kept 2" in log, log
        assert registry_tags(registry, f"{reg}-old") == []  # older than maxAge
        assert registry_tags(registry, f"{reg}-young1") == []  # the oldest while over maxDisk
        for kept in ("young2", "young3", "foreign"):  # under maxDisk now; not dsbuild's
            assert registry_tags(registry, f"{reg}-{kept}") == ["1"], kept
        assert registry_tags(registry, f"{node}-old") == ["1"]  # not under the cleaner's `only`

        # The node cleaner: its DaemonSet's pod runs `dsbuild gc` when it starts; a new pod now.
        selector = "app.kubernetes.io/component=node-cleaner"
        before = {p["metadata"]["uid"] for p in cluster.get("pod", namespace=ns, selector=selector)}
        cluster("delete", "pod", "-n", ns, "-l", selector, "--wait=true", "--timeout=120s")

        def new_pods() -> list[dict]:
            return [p for p in cluster.get("pod", namespace=ns, selector=selector) if p["metadata"]["uid"] not in before]

        def cleaned() -> str:
            pods = new_pods()
            if not pods or pods[0]["status"].get("phase") != "Running":
                return ""
            text = cluster("logs", "-n", ns, pods[0]["metadata"]["name"], check=False)
            return text if ", kept " in text else ""

        cluster.wait_for(cleaned, "the node cleaner's first run", timeout=300, interval=2)
        assert [p["spec"]["nodeName"] for p in new_pods()] == [real_node.name]
        assert "removed 1 (" in cleaned(), cleaned()
        assert docker("image", "inspect", f"{node}-old:1", check=False).returncode != 0  # gone
        assert docker("image", "inspect", f"{node}-held:1", check=False).returncode == 0  # a container uses it
        assert docker("image", "inspect", f"{node}-young:1", check=False).returncode == 0  # young
    finally:
        for name in [f"{reg}-{n}" for n in (*ages, "foreign")] + [f"{node}-{n}" for n in node_ages]:
            delete_image(registry, name, "1")


def test_log_in_spawn_upgrade_and_uninstall(cluster, real_node, helm, release, setup):
    ns, ports = release, setup.ports
    hub = Hub(f"http://127.0.0.1:{ports['proxy']}/")
    hub.log_in("alice")
    hub.api("post", "users/alice/server", json={"environment": "notebooks", "cpu": "500m", "memory": "1Gi",
                                                "storage": "1Gi"})
    cluster.wait_for(lambda: hub.server_ready("alice"), "alice's server", timeout=360, interval=1)
    server = [p for p in cluster.get("pod", namespace=ns) if p["metadata"]["name"].startswith("jupyter-alice")]
    assert [p["spec"]["nodeName"] for p in server] == [real_node.name]
    assert hub.server("alice", "get", "status").status_code == 200  # through the proxy, to the pod
    put = hub.server("alice", "put", "contents/kept.txt", json={"type": "file", "format": "text", "content": "kept"})
    assert put.status_code in (200, 201), put.text[:300]
    claims = {c["metadata"]["name"]: c["metadata"]["uid"] for c in cluster.get("pvc", namespace=ns)}
    assert len([k for k in claims if "alice" in k]) == 1, claims

    # A changed catalog: the hub restarts with it; alice's server and volume stay.
    hub_before, server_before = pod_uid(cluster, ns, f"{FULL}-hub-"), pod_uid(cluster, ns, "jupyter-alice")
    install(helm, ns, release_values(cluster, real_node, setup, "Renamed notebooks"), verb="upgrade")
    cluster.wait_for(lambda: pod_uid(cluster, ns, f"{FULL}-hub-") != hub_before, "a new hub pod", timeout=120)
    cluster.wait_for(hub.answers, "the upgraded hub", timeout=180)
    assert "Renamed notebooks" in hub.session.get(hub.url + "hub/spawn/alice/second", timeout=60).text
    assert pod_uid(cluster, ns, "jupyter-alice") == server_before  # never restarted
    assert hub.server_ready("alice")
    answer = hub.server("alice", "get", "contents/kept.txt")
    assert answer.status_code == 200 and answer.json()["content"] == "kept"

    # Uninstall: the release's objects go, the volumes stay.
    helm("uninstall", "rel", "--namespace", ns, "--wait", "--timeout", "5m", timeout=400)
    assert not [d for d in cluster.get("deployment", namespace=ns)]
    left = {c["metadata"]["name"]: c["metadata"]["uid"] for c in cluster.get("pvc", namespace=ns)}
    assert left == claims  # the users' homes and the hub's database, the same claims
