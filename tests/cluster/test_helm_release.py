"""The Helm chart installed into the test cluster with its real node: `helm install`,
a user logs in through the release's proxy and starts a server through the hub's REST
API (it runs on the real node, answers through the proxy); `helm upgrade` with a
changed catalog restarts the hub but keeps the server running and its volume; `helm
uninstall` keeps the user's volume and the hub's database.

The test cluster has no kube-proxy and no DNS, so the release runs with
network.mode=hostNetwork (docs/helm.md): the hub and proxy on the node's network, the
hub reaching the API server at 127.0.0.1. Needs the real node: run under the lock,
`flock /work/wt/_brief/realnode.lock .venv/bin/pytest tests/cluster/test_helm_release.py`."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helm.chart import CHART, Helm, build_helm

from . import objects, realnode

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
NODE_IP = "10.123.0.1"  # node.sh's NODE_IP
PASSWORD = "helm-test"
ON_NODE = {"nodeSelector": {objects.POOL_LABEL: realnode.NODE_POOL},
           "tolerations": [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]}


def free_port() -> int:
    from dsbuild.builder.run import free_port as free
    return free()


@pytest.fixture(scope="module")
def helm(cluster, tmp_path_factory) -> Helm:
    """helm (deploy/helm/build.sh) with the cluster's admin kubeconfig."""
    return Helm(build_helm(), tmp_path_factory.mktemp("helm-home"), cluster.kubeconfig)


@pytest.fixture(scope="module")
def hub_image(real_node) -> str:
    """The chart's image, built from deploy/hub/Dockerfile and pushed to the cluster's registry."""
    done = subprocess.run([str(ROOT / "deploy" / "hub" / "build.sh"), "--registry", real_node.registry],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def release_values(cluster, real_node, hub_image: str, node_image: str, ports: dict, title: str) -> dict:
    server = json.loads(cluster("config", "view", "--raw", "-o", "json"))["clusters"][0]["cluster"]["server"]
    api = urlsplit(server)
    catalog = {k: v for k, v in realnode.catalog(node_image).items() if k != "data_volumes"}
    catalog["environments"]["notebooks"]["display_name"] = title
    name, tag = hub_image.rsplit(":", 1)
    return {
        "image": {"name": name, "tag": tag},
        "network": {"mode": "hostNetwork", "nodeIP": NODE_IP},
        "registry": {"host": real_node.registry},
        "hub": {"port": ports["hub"], "password": PASSWORD, **ON_NODE,
                "db": {"pvc": {"storageClassName": objects.REAL_STORAGE_CLASS}},
                # No kube-proxy: the API server where the node's network reaches it.
                "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": api.hostname},
                             {"name": "KUBERNETES_SERVICE_PORT", "value": str(api.port)}]},
        "proxy": {"port": ports["proxy"], "apiPort": ports["api"], **ON_NODE},
        "singleuser": {**ON_NODE, "startTimeout": 300},
        "launch": {"enabled": False},
        "catalog": catalog,
    }


@pytest.fixture
def release_namespace(cluster):
    name = f"dsbuild-helm-{uuid.uuid4().hex[:6]}"
    # No PodSecurity level: hostNetwork (the test cluster's mode) is "privileged".
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster("delete", "pods,pvc", "--all", "-n", name, "--wait=true", "--timeout=90s", check=False)
    cluster.recycle_volumes(name)
    cluster("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)


class Hub:
    """A browser-less user of the release, through its proxy (requests)."""

    def __init__(self, url: str):
        import requests

        self.url = url
        self.session = requests.Session()
        self.token = ""

    def answers(self) -> bool:
        try:
            return self.session.get(self.url + "hub/health", timeout=5).status_code == 200
        except OSError:
            return False

    def log_in(self, user: str) -> None:
        self.session.get(self.url + "hub/login", timeout=30)
        answer = self.session.post(self.url + "hub/login", timeout=60, allow_redirects=False, data={
            "username": user, "password": PASSWORD, "_xsrf": self.session.cookies.get("_xsrf", "")})
        assert answer.status_code == 302, answer.text[:500]
        made = self.api("post", f"users/{user}/tokens", json={"note": "helm test", "expires_in": 3600})
        self.token = made.json()["token"]

    def api(self, method: str, path: str, **kw):
        headers = {"X-XSRFToken": self.session.cookies.get("_xsrf", "")}
        if self.token:
            headers = {"Authorization": f"token {self.token}"}
        answer = self.session.request(method, self.url + "hub/api/" + path, headers=headers, timeout=60, **kw)
        assert answer.status_code < 400, f"{method} {path}: {answer.status_code} {answer.text[:300]}"
        return answer

    def server_ready(self, user: str) -> bool:
        server = self.api("get", f"users/{user}").json()["servers"].get("")
        return bool(server and server["ready"])

    def server(self, user: str, method: str, path: str, **kw):
        """The user's own server, through the proxy, with the user's token."""
        return self.session.request(method, f"{self.url}user/{user}/api/{path}", timeout=60,
                                    headers={"Authorization": f"token {self.token}"}, **kw)


def install(helm: Helm, cluster, namespace: str, values: dict, verb: str = "install") -> None:
    helm(verb, "rel", str(CHART), "--namespace", namespace, "--wait", "--timeout", "10m", values=values, timeout=700)


def pod_uid(cluster, namespace: str, prefix: str) -> str:
    pods = [p for p in cluster.get("pod", namespace=namespace) if p["metadata"]["name"].startswith(prefix)]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]["metadata"]["uid"]


def test_install_log_in_spawn_upgrade_and_uninstall(cluster, real_node, node_image, hub_image, helm, release_namespace):
    ns = release_namespace
    ports = {"hub": free_port(), "proxy": free_port(), "api": free_port()}
    install(helm, cluster, ns, release_values(cluster, real_node, hub_image, node_image, ports, "Test notebooks"))
    hub = Hub(f"http://127.0.0.1:{ports['proxy']}/")
    cluster.wait_for(hub.answers, "the hub through the release's proxy", timeout=120)

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
    user_claims = {k: v for k, v in claims.items() if not k.endswith("-hub-db")}
    assert len(user_claims) == 1, claims

    # A changed catalog: the hub restarts with it; alice's server and volume stay.
    hub_before, server_before = pod_uid(cluster, ns, "rel-dsbuild-hub-"), pod_uid(cluster, ns, "jupyter-alice")
    install(helm, cluster, ns, release_values(cluster, real_node, hub_image, node_image, ports, "Renamed notebooks"),
            verb="upgrade")
    cluster.wait_for(lambda: pod_uid(cluster, ns, "rel-dsbuild-hub-") != hub_before, "a new hub pod", timeout=120)
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
    assert left == claims  # the user's home and the hub's database, the same claims
