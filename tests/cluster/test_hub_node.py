"""The hub on Kubernetes, end to end, in a browser: `dsbuild hub up --spawner
kubernetes` (JupyterHub, configurable-http-proxy, KubeLaunchSpawner) in
authenticated mode with the dummy authenticator, spawning on the test
cluster's real node an image pushed with `dsbuild build --registry --push`;
and in anonymous mode with `dsbuild serve --registry`, a launch link.

The hub's namespace (`default`) is pinned to the real node (nodehub.py). Its
catalog also offers what a user may pick and Kubernetes cannot run: an image
missing from the registry and more CPUs than the node has; the user meets them
as messages on the hub's progress page. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from dsbuild.launch.localhub import HubError, HubOptions, find_proxy, hub_down
from tests.browser import ARTIFACTS, need, notebook_open

from . import nodehub, realnode

pytestmark = [pytest.mark.cluster, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = nodehub.NAMESPACE
PASSWORD = "node-hub-test"
TOO_MANY_CPUS = 64  # more than the real node has: no node can take it


@pytest.fixture(scope="module")
def pinned_namespace(cluster, hub_kubeconfig, real_node):
    """`default`, pinned to the real node, with the hub's role bound."""
    nodehub.pin_to_real_node(cluster)
    yield NAMESPACE
    nodehub.unpin(cluster)


def hub_catalog(image: str, registry: str) -> dict:
    """The node's image, plus one never pushed and a CPU choice no node can hold."""
    catalog = {k: v for k, v in realnode.catalog(image).items() if k != "data_volumes"}
    catalog["environments"]["missing"] = {"image": f"{registry}/dsbuild-never-pushed:{uuid.uuid4().hex[:12]}",
                                          "display_name": "Never pushed"}
    catalog["cpu"].append({"limit": TOO_MANY_CPUS, "guarantee": TOO_MANY_CPUS})
    return catalog


def start_hub(tmp: Path, registry: str, hub_kubeconfig: Path, catalog_file: Path, **options) -> HubOptions:
    try:
        return nodehub.start_hub(tmp, registry, hub_kubeconfig, catalog_file, PASSWORD, **options)
    except HubError as err:
        pytest.fail(f"dsbuild hub up --spawner kubernetes: {err}")


@pytest.fixture(scope="module")
def node_hub(pinned_namespace, hub_kubeconfig, real_node, node_image, tmp_path_factory):
    """`dsbuild hub up --spawner kubernetes` with a catalog offering the node's image."""
    try:
        find_proxy()
    except HubError as err:
        need(False, str(err))
    tmp = tmp_path_factory.mktemp("node-hub")
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(hub_catalog(node_image, real_node.registry)))
    hub = start_hub(tmp, real_node.registry, hub_kubeconfig, tmp / "catalog.yaml", mode="authenticated",
                    authenticator="dummy", service_url=f"http://127.0.0.1:{nodehub.free_port()}/")
    try:
        yield hub
    finally:
        hub_down(hub.state_dir, say=print)


def log_in(chromium, hub: HubOptions, user: str):
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    page.goto(hub.hub_url + "hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    return page


def submit_spawn_form(page, hub: HubOptions, environment="notebooks", cpu="500m", memory="1Gi",
                      storage="1Gi", screenshot: str | None = None) -> None:
    from playwright.sync_api import expect

    page.goto(hub.hub_url + "hub/spawn")
    expect(page.locator("#dsbuild-cpu")).to_be_visible(timeout=30_000)
    page.check(f"input[name=environment][value={environment}]")
    page.select_option("#dsbuild-cpu", cpu)
    page.select_option("#dsbuild-memory", memory)
    page.select_option("#dsbuild-storage", storage)
    if screenshot:
        page.screenshot(path=ARTIFACTS / screenshot)
    page.locator("form [type=submit]").first.click()


def spawn_from_form(page, hub: HubOptions, **choices) -> None:
    submit_spawn_form(page, hub, screenshot="node-hub-spawn-form.png", **choices)
    page.wait_for_url("**/user/alice/lab**", timeout=300_000)


def open_notebook(page, hub: HubOptions):
    page.goto(hub.hub_url + f"user/alice/lab/tree/{realnode.NOTEBOOK}")
    return notebook_open(page, realnode.NOTEBOOK)


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
    page = log_in(chromium, hub, "alice")
    spawn_from_form(page, hub, cpu="500m", memory="1Gi", storage="1Gi")

    pods = cluster.get("pod", namespace=NAMESPACE, selector="hub.jupyter.org/username=alice")
    assert [p["spec"]["nodeName"] for p in pods] == [real_node.name]

    notebook = open_notebook(page, hub)
    expect(notebook.locator(".jp-Cell").first).to_contain_text("From the repository.")
    run_in_a_new_cell(page, notebook, CELL)
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
    notebook = open_notebook(page, hub)
    page.screenshot(path=ARTIFACTS / "node-hub-restarted.png")

    # Over the memory limit: JupyterLab says the kernel died; the server itself keeps running.
    started = page.request.get(hub.hub_url + "user/alice/api/status").json()["started"]
    run_in_a_new_cell(page, notebook, "x = b'x' * (2 * 2**30)")  # 2 GiB in a 1Gi server
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("appears to have died", timeout=120_000)
    page.screenshot(path=ARTIFACTS / "node-hub-kernel-died.png")
    dialog.locator("button.jp-mod-accept").click()
    # The server restarted the kernel (its own state, through the proxy; the page's
    # websocket may still be reconnecting), and is the same process as before.
    kernels = lambda: page.request.get(hub.hub_url + "user/alice/api/kernels").json()  # noqa: E731
    cluster.wait_for(lambda: [k for k in kernels() if k["execution_state"] == "idle"], "the kernel back", timeout=120)
    assert page.request.get(hub.hub_url + "user/alice/api/status").json()["started"] == started
    pod = cluster.get("pod", "jupyter-alice", namespace=NAMESPACE)
    assert [c["restartCount"] for c in pod["status"]["containerStatuses"]] == [0]
    stop_from_control_panel(page, hub)


def run_in_a_new_cell(page, notebook, code: str) -> None:
    notebook.locator(".jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a code cell below the repository's markdown
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def failed_on_the_progress_page(page, user: str, screenshot: str):
    """Wait on the hub's spawn-pending page for the spawn to fail; the progress
    message and the event log the user sees there."""
    from playwright.sync_api import expect

    page.wait_for_url(f"**/hub/spawn-pending/{user}**", timeout=60_000)
    message = page.locator("#progress-message")
    expect(message).to_contain_text("Spawn failed: ", timeout=240_000)
    expect(page.locator("#progress-details")).to_have_attribute("open", "")  # the event log, opened
    page.screenshot(path=ARTIFACTS / screenshot)
    return message.inner_text(), page.locator("#progress-log").inner_text()


def user_pods_and_claims(cluster, user: str) -> list[str]:
    selector = f"hub.jupyter.org/username={user}"
    return [o["metadata"]["name"] for kind in ("pod", "pvc")
            for o in cluster.get(kind, namespace=NAMESPACE, selector=selector)]


def test_an_image_missing_from_the_registry_fails_on_the_progress_page_and_leaves_no_pod(node_hub, chromium, cluster):
    catalog = yaml.safe_load((node_hub.catalog_file).read_text())
    missing = catalog["environments"]["missing"]["image"]
    page = log_in(chromium, node_hub, "bob")
    submit_spawn_form(page, node_hub, environment="missing")
    message, log = failed_on_the_progress_page(page, "bob", "node-hub-missing-image.png")
    # Within the hub's start_timeout, with the node's own reason and the image's name; the
    # event log ends with it too (the steps before it show when KubeSpawner's 1 s progress
    # poll came between them).
    assert message.startswith(f"Spawn failed: The node could not pull the image {missing}: ")
    assert "not found" in message
    assert log.strip().endswith(message.strip())
    # The pod is gone, and so is the home claim this first start made (nothing ran with it).
    assert cluster.get("pod", "jupyter-bob", namespace=NAMESPACE) is None
    assert user_pods_and_claims(cluster, "bob") == []


def test_more_cpus_than_any_node_has_fails_on_the_progress_page_with_the_schedulers_reason(
        node_hub, chromium, cluster):
    page = log_in(chromium, node_hub, "carol")
    submit_spawn_form(page, node_hub, cpu=str(TOO_MANY_CPUS))
    message, log = failed_on_the_progress_page(page, "carol", "node-hub-unschedulable.png")
    assert message.startswith("Spawn failed: No node can run this server (")
    assert f"{TOO_MANY_CPUS} CPU" in message and "Insufficient cpu" in message  # the scheduler's reason
    assert "No node can take this server yet: " in log  # shown while the hub waited
    assert user_pods_and_claims(cluster, "carol") == []  # no pod, and no claim of this first start


def test_a_launch_link_builds_pushes_and_opens_the_notebook_from_a_pod(
        pinned_namespace, hub_kubeconfig, real_node, node_image, chromium, cluster, tmp_path):
    """`dsbuild serve` with an anonymous hub on Kubernetes: the link to a local
    git repository is built, pushed to the cluster's registry, spawned on the
    real node, and opens the requested notebook."""
    import subprocess
    import uuid
    from urllib.parse import quote

    from tests.hubs import start_serve, stop_service_and_hub

    repo = realnode.make_repo(tmp_path / "launched")
    catalog = {k: v for k, v in realnode.catalog(node_image).items() if k != "data_volumes"}
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    port = nodehub.free_port()
    hub = start_hub(tmp_path, real_node.registry, hub_kubeconfig, tmp_path / "catalog.yaml",
                    service_url=f"http://127.0.0.1:{port}/")
    prefix = f"dsbuild-test-klaunch-{uuid.uuid4().hex[:6]}"
    service = None
    try:
        service = start_serve(hub, port, tmp_path, "--image-prefix", prefix, "--registry", real_node.registry,
                              "--max-repo-size", "1Mi")
        page = chromium.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"http://127.0.0.1:{port}/v2/git/{quote(repo.as_uri(), safe='')}/main"
                  f"?labpath={realnode.NOTEBOOK}")
        notebook_open(page, realnode.NOTEBOOK, first_cell="From the repository.", launch_s=600)
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
