"""The hub on Kubernetes, end to end, in a browser: `dsbuild hub up --spawner
kubernetes` (JupyterHub, configurable-http-proxy, KubeLaunchSpawner) in
authenticated mode with the dummy authenticator, spawning on the test
cluster's real node an image pushed with `dsbuild build --registry --push`;
and in anonymous mode with `dsbuild serve --registry`, a launch link.

KubeSpawner outside a cluster spawns in the namespace `default`; the test
pins that namespace to the real node the way an operator pins a namespace to a
node pool (the PodNodeSelector and PodTolerationRestriction admission
plugins' annotations), binds the hub's role there, and undoes both after.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from dsbuild.launch.localhub import HubError, HubOptions, find_proxy, hub_down, hub_up
from tests.browser import ARTIFACTS, need

from . import objects, realnode
from .conftest import HUB_NAMESPACE

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default"
PASSWORD = "node-hub-test"
NODE_IP = "10.123.0.1"  # node.sh's NODE_IP: the bridge address pods reach this machine at


def free_port() -> int:
    from dsbuild.builder.run import free_port as free
    return free()


@pytest.fixture(scope="module")
def pinned_namespace(cluster, hub_kubeconfig, real_node):
    """`default`, pinned to the real node, with the hub's role bound."""
    annotations = {
        "scheduler.alpha.kubernetes.io/node-selector": f"{objects.POOL_LABEL}={realnode.NODE_POOL}",
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
            [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]),
    }
    cluster("annotate", "namespace", NAMESPACE, "--overwrite", *(f"{k}={v}" for k, v in annotations.items()))
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "dsbuild-test-hub", "namespace": NAMESPACE},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "dsbuild-test-hub"},
                   "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": HUB_NAMESPACE}]})
    yield NAMESPACE
    # The test cluster's `default` holds nothing else: what is left there is the hub's.
    cluster("delete", "pods,pvc", "--all", "-n", NAMESPACE, "--wait=true", "--timeout=90s", check=False)
    cluster.recycle_volumes(NAMESPACE)
    cluster("delete", "rolebinding", "dsbuild-test-hub", "-n", NAMESPACE, check=False)
    cluster("annotate", "namespace", NAMESPACE, *(f"{k}-" for k in annotations), check=False)


@pytest.fixture(scope="module")
def node_hub(pinned_namespace, hub_kubeconfig, real_node, node_image, tmp_path_factory):
    """`dsbuild hub up --spawner kubernetes` with a catalog offering the node's image."""
    try:
        find_proxy()
    except HubError as err:
        need(False, str(err))
    tmp = tmp_path_factory.mktemp("node-hub")
    catalog = {k: v for k, v in realnode.catalog(node_image).items() if k != "data_volumes"}
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    hub_port = free_port()
    options = HubOptions(state_dir=tmp / "hub", port=free_port(), proxy_api_port=free_port(), hub_port=hub_port,
                         hub_ip=NODE_IP, mode="authenticated", authenticator="dummy", spawner="kubernetes",
                         hub_connect_url=f"http://{NODE_IP}:{hub_port}", launch_image_prefix=f"{real_node.registry}/",
                         catalog_file=tmp / "catalog.yaml", service_url=f"http://127.0.0.1:{free_port()}/",
                         cull_timeout=3600)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(hub_kubeconfig))  # the hub's service account, as in a cluster
        try:
            hub_up(options, say=print, password=PASSWORD)
        except HubError as err:
            pytest.fail(f"dsbuild hub up --spawner kubernetes: {err}")
    try:
        yield options
    finally:
        hub_down(options.state_dir, say=print)





def spawn_from_form(page, hub: HubOptions, cpu: str, memory: str, storage: str) -> None:
    from playwright.sync_api import expect

    page.goto(hub.hub_url + "hub/spawn")
    expect(page.locator("#dsbuild-cpu")).to_be_visible(timeout=30_000)
    page.check("input[name=environment]")  # the one environment: the image from the registry
    page.select_option("#dsbuild-cpu", cpu)
    page.select_option("#dsbuild-memory", memory)
    page.select_option("#dsbuild-storage", storage)
    page.screenshot(path=ARTIFACTS / "node-hub-spawn-form.png")
    page.locator("form [type=submit]").first.click()
    page.wait_for_url("**/user/alice/lab**", timeout=300_000)


def open_notebook(page, hub: HubOptions):
    from playwright.sync_api import expect

    page.goto(hub.hub_url + f"user/alice/lab/tree/{realnode.NOTEBOOK}")
    notebook = page.locator(".jp-NotebookPanel:visible")
    expect(notebook).to_have_count(1, timeout=120_000)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=120_000)
    return notebook


def stop_from_control_panel(page, hub: HubOptions) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    page.goto(hub.hub_url + "hub/home", wait_until="networkidle")
    # The page's script binds the button; a click before that sends nothing. So click
    # again only while no stop request has gone out (never a second stop).
    for _ in range(3):
        try:
            with page.expect_request(lambda r: r.method == "DELETE" and r.url.endswith("/server"), timeout=10_000):
                page.click("#stop")
            break
        except PlaywrightTimeout:
            continue
    expect(page.locator("#stop")).to_be_hidden(timeout=120_000)  # the hub answered the stop
    expect(page.locator("#start")).to_be_visible()


CELL = ("q = int(open('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').read()) / "
        "int(open('/sys/fs/cgroup/cpu/cpu.cfs_period_us').read()); "
        "m = int(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read()); "
        "open('/home/jovyan/from-the-browser.txt', 'w').write('kept'); "
        "print(f'cpu={q} memory={m}')")


def test_log_in_choose_resources_run_a_cell_stop_and_start_again(node_hub, chromium, cluster, real_node):
    from playwright.sync_api import expect

    hub = node_hub
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(hub.hub_url + "hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    spawn_from_form(page, hub, cpu="500m", memory="1Gi", storage="1Gi")

    pods = cluster.get("pod", namespace=NAMESPACE)
    assert [p["spec"]["nodeName"] for p in pods] == [real_node.name]

    notebook = open_notebook(page, hub)
    expect(notebook.locator(".jp-Cell").first).to_contain_text("From the repository.")
    notebook.locator(".jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a code cell below the repository's markdown
    page.keyboard.press("Enter")
    page.keyboard.type(CELL)
    page.keyboard.press("Shift+Enter")
    # The container's own cgroup holds what was chosen in the form: 0.5 CPU, 1Gi.
    expect(notebook.locator(".jp-OutputArea-output").filter(has_text=f"cpu=0.5 memory={2**30}")) \
        .to_have_count(1, timeout=60_000)
    page.screenshot(path=ARTIFACTS / "node-hub-jupyterlab.png")

    stop_from_control_panel(page, hub)
    cluster.wait_for(lambda: not cluster.get("pod", namespace=NAMESPACE), "the server's pod to go", timeout=120)

    spawn_from_form(page, hub, cpu="500m", memory="1Gi", storage="1Gi")
    answer = page.request.get(hub.hub_url + "user/alice/api/contents/from-the-browser.txt")
    assert answer.ok and answer.json()["content"] == "kept"
    answer = page.request.get(hub.hub_url + f"user/alice/api/contents/{realnode.NOTEBOOK}")
    assert answer.ok and answer.json()["type"] == "notebook"
    open_notebook(page, hub)
    page.screenshot(path=ARTIFACTS / "node-hub-restarted.png")
    stop_from_control_panel(page, hub)



def start_hub(tmp: Path, registry: str, hub_kubeconfig: Path, catalog_file: Path, **options) -> HubOptions:
    hub_port = free_port()
    hub = HubOptions(state_dir=tmp / "hub", port=free_port(), proxy_api_port=free_port(), hub_port=hub_port,
                     hub_ip=NODE_IP, spawner="kubernetes", hub_connect_url=f"http://{NODE_IP}:{hub_port}",
                     launch_image_prefix=f"{registry}/", catalog_file=catalog_file, cull_timeout=3600, **options)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(hub_kubeconfig))  # the hub's service account, as in a cluster
        try:
            hub_up(hub, say=print, password=PASSWORD)
        except HubError as err:
            pytest.fail(f"dsbuild hub up --spawner kubernetes: {err}")
    return hub


def test_a_launch_link_builds_pushes_and_opens_the_notebook_from_a_pod(
        pinned_namespace, hub_kubeconfig, real_node, node_image, chromium, cluster, tmp_path):
    """`dsbuild serve` with an anonymous hub on Kubernetes: the link to a local
    git repository is built, pushed to the cluster's registry, spawned on the
    real node, and opens the requested notebook."""
    import subprocess
    import sys
    import uuid
    from urllib.parse import quote

    from playwright.sync_api import expect

    from tests.hubs import stop_service_and_hub
    from tests.launch.test_browser import fetch

    repo = realnode.make_repo(tmp_path / "launched")
    catalog = {k: v for k, v in realnode.catalog(node_image).items() if k != "data_volumes"}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    port = free_port()
    hub = start_hub(tmp_path, real_node.registry, hub_kubeconfig, tmp_path / "catalog.yaml",
                    service_url=f"http://127.0.0.1:{port}/")
    prefix = f"dsbuild-test-klaunch-{uuid.uuid4().hex[:6]}"
    service = None
    try:
        with open(tmp_path / "serve.log", "wb") as log:
            service = subprocess.Popen(
                [str(Path(sys.executable).with_name("dsbuild")), "serve", "--hub-state", str(hub.state_dir),
                 "--port", str(port), "--allow-scheme", "file", "--image-prefix", prefix,
                 "--registry", real_node.registry, "--max-repo-size", "1Mi"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DSBUILD_CACHE_DIR": str(tmp_path / "cache")})
        cluster.wait_for(lambda: _answers(fetch, f"http://127.0.0.1:{port}/health"), "dsbuild serve", timeout=60)
        page = chromium.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{port}/v2/git/{quote(repo.as_uri(), safe='')}/main"
                  f"?labpath={realnode.NOTEBOOK}")
        page.wait_for_url(f"**/user/**/lab/tree/{realnode.NOTEBOOK}**", timeout=600_000)
        expect(page.locator(".jp-NotebookPanel:visible")).to_have_count(1, timeout=120_000)
        expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_contain_text("From the repository.")
        expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=120_000)  # its kernel runs
        page.screenshot(path=ARTIFACTS / "node-launch-jupyterlab.png")
        # This launch's pod (its temporary user's), whatever an earlier test left in the namespace.
        pods = [p for p in cluster.get("pod", namespace=NAMESPACE) if p["metadata"]["name"].startswith("jupyter-binder-")]
        assert [p["spec"]["nodeName"] for p in pods] == [real_node.name]
        image = pods[0]["spec"]["containers"][0]["image"]
        assert image.startswith(f"{real_node.registry}/{prefix}-")  # built and pushed by the service
    finally:
        try:
            stop_service_and_hub(service, hub)
        finally:
            images = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                                    capture_output=True, text=True, check=False).stdout.split()
            mine = [i for i in images if f"/{prefix}-" in i or i.startswith(prefix)]
            if mine:
                subprocess.run(["docker", "image", "rm", *mine], capture_output=True, check=False)


def _answers(fetch, url: str) -> bool:
    try:
        return fetch(url, timeout=2)[0] == 200
    except OSError:
        return False
