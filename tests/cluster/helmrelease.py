"""Helpers of the Helm release tests (tests/cluster/test_helm_release.py): the values
the test cluster installs with, a browser-less user of the release (requests), and
images made to measure for the image cleaners (pushed straight through the registry
API, with the build date a test needs). Plain helpers; the fixtures are in the test."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from dsbuild.builder.gc import BUILT_LABEL

from tests.helm.chart import CHART

from . import objects, realnode

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "rel"
NODE_IP = "10.123.0.1"  # node.sh's NODE_IP
PASSWORD = "helm-test"
ON_NODE = {"nodeSelector": {objects.POOL_LABEL: realnode.NODE_POOL},
           "tolerations": [{"key": realnode.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]}
NEVER = "0 0 1 1 *"  # the registry cleaner's schedule: the test starts its Job by hand


@dataclass(frozen=True)
class Setup:
    """What one release of the test is installed with (besides the catalog's title)."""
    hub_image: str
    node_image: str
    ports: dict
    launch_prefix: str  # the launch service's --image-prefix (its images on the engine and registry)
    clean_prefix: str  # the cleaners' --only (the images the cleaner test makes)
    repo: Path  # the launch test's repository; its folder (the tests' repositories) is mounted (file://)


def host_path(name: str, path: str, kind: str, mount: str | None = None, read_only: bool = True) -> tuple[dict, dict]:
    return ({"name": name, "hostPath": {"path": path, "type": kind}},
            {"name": name, "mountPath": mount or path, "readOnly": read_only})


def launch_values(setup: Setup) -> dict:
    """`dsbuild serve` in the release: builds on the node's Docker engine (the machine's),
    trusting the machine's CA bundle (what the builds' package downloads need here), the
    test's repository mounted read-only at its own path and allowed as file://."""
    from dsbuild.builder.host import read_host_settings

    mounts = [host_path("repos", str(setup.repo.parent), "Directory")]
    env = []
    ca = read_host_settings().ca_bundle
    if ca:
        mounts.append(host_path("host-ca", str(ca.resolve()), "File", "/etc/dsbuild/host-ca.crt"))
        env.append({"name": "SSL_CERT_FILE", "value": "/etc/dsbuild/host-ca.crt"})
    return {"enabled": True, "port": setup.ports["launch"], "buildOn": "docker", **ON_NODE,
            "extraArgs": ["--allow-scheme=file", f"--image-prefix={setup.launch_prefix}", "--max-repo-size=1Mi"],
            "extraEnv": env, "extraVolumes": [v for v, _ in mounts], "extraVolumeMounts": [m for _, m in mounts]}


def cluster_build_values(setup: Setup, builds: "ClusterBuilds", api_env: list[dict]) -> dict:
    """launch_values with builds on the cluster (launch.buildOn=kubernetes): the build
    daemon and build pods of `builds.image` on the real node, on its network (the registry
    is on its loopback). Half a CPU: the node has 1.5 to give and the release's pods and a
    server hold about 0.75 (the build pod is Guaranteed; with 1 CPU it stayed Pending)."""
    launch = launch_values(setup)
    launch.update(buildOn="kubernetes", buildImage=builds.image, extraEnv=[*launch["extraEnv"], *api_env])
    launch["extraArgs"] += ["--build-host-network", f"--build-node-selector={objects.POOL_LABEL}={realnode.NODE_POOL}",
                            f"--build-toleration={realnode.TAINT_KEY}=true:NoSchedule", "--build-cpu=500m",
                            "--build-memory=3Gi", "--build-deadline=1500", f"--build-cgroup={builds.cgroup}",
                            f"--build-daemon-root={builds.daemon_root}"]
    return launch


@dataclass(frozen=True)
class ClusterBuilds:
    """How the release's launch service builds on the test cluster."""
    image: str  # the build daemon's and build pods' image (tests/buildkit/image.sh)
    cgroup: str  # a Guaranteed pod's cgroup on the real node (node.sh's kubelet)
    daemon_root: str  # the build daemon's state on the node (removed by the test)


def cleaner_values(setup: Setup) -> dict:
    """Both cleaners, on the real node, narrowed to the images the cleaner test makes
    (the machine's engine and the cluster's registry are shared with other tests)."""
    return {"registry": {"enabled": True, "schedule": NEVER, "maxAge": "30d", "maxDisk": "2.5m",
                         "only": setup.clean_prefix + "-reg", **ON_NODE},
            "node": {"enabled": True, "intervalSeconds": 3600, "maxAge": "30d", "maxDisk": "50g",
                     "only": setup.clean_prefix + "-node*", **ON_NODE}}


def build_hub_image(registry: str) -> str:
    """The chart's image, built from deploy/hub/Dockerfile (reused when its inputs are
    unchanged) and pushed to `registry`; its name."""
    import subprocess

    done = subprocess.run([str(ROOT / "deploy" / "hub" / "build.sh"), "--registry", registry],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def install(helm, namespace: str, values: dict, verb: str = "install") -> None:
    """`helm install` (or `upgrade`) of the release "rel", waiting for its pods."""
    helm(verb, RELEASE, str(CHART), "--namespace", namespace, "--wait", "--timeout", "10m", values=values,
         timeout=700)


def api_env(cluster) -> list[dict]:
    """No kube-proxy: the API server where the node's network reaches it, for the release's pods."""
    server = json.loads(cluster("config", "view", "--raw", "-o", "json"))["clusters"][0]["cluster"]["server"]
    api = urlsplit(server)
    return [{"name": "KUBERNETES_SERVICE_HOST", "value": api.hostname},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(api.port)}]


def hub_values(cluster, real_node, hub_image: str, ports: dict) -> dict:
    """The hub and proxy of a release on the test cluster's real node, on its network
    (hostNetwork: no kube-proxy, no DNS), with its registry; the chart's other defaults."""
    name, tag = hub_image.rsplit(":", 1)
    return {
        "image": {"name": name, "tag": tag},
        "network": {"mode": "hostNetwork", "nodeIP": NODE_IP},
        "registry": {"host": real_node.registry},
        "hub": {"port": ports["hub"], "password": PASSWORD, **ON_NODE,
                "db": {"pvc": {"storageClassName": objects.REAL_STORAGE_CLASS}}, "extraEnv": api_env(cluster)},
        "proxy": {"port": ports["proxy"], "apiPort": ports["api"], **ON_NODE},
    }


def release_values(cluster, real_node, setup: Setup, title: str, builds: ClusterBuilds | None = None) -> dict:
    """The test's release; with `builds`, its launch service builds on the cluster."""
    catalog = {k: v for k, v in realnode.catalog(setup.node_image).items() if k != "data_volumes"}
    catalog["environments"]["notebooks"]["display_name"] = title
    return {
        **hub_values(cluster, real_node, setup.hub_image, setup.ports),
        "singleuser": {**ON_NODE, "startTimeout": 300},
        "launch": cluster_build_values(setup, builds, api_env(cluster)) if builds else launch_values(setup),
        "imageCleaner": cleaner_values(setup),
        "catalog": catalog,
    }


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


# -- images made to measure, for the cleaners -------------------------------------------


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _upload(base: str, name: str, data: bytes) -> None:
    start = urllib.request.Request(f"{base}/v2/{name}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(start, timeout=30) as answer:
        location = urljoin(base, answer.headers["Location"])
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(f"{location}{sep}digest={_digest(data)}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(put, timeout=60).close()


def push_image(registry: str, name: str, tag: str, created: str, size: int, built_by_dsbuild: bool = True) -> None:
    """A one-file image of `size` random bytes whose build date is `created` (RFC 3339),
    labelled as dsbuild's (or not), pushed as NAME:TAG through the registry API."""
    content = os.urandom(size)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("payload")
        info.size = size
        tar.addfile(info, io.BytesIO(content))
    layer_tar = tar_bytes.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    labels = {BUILT_LABEL: "cleaner-test"} if built_by_dsbuild else {"purpose": "cleaner-test"}
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": created,
                         "config": {"Labels": labels, "Cmd": ["/payload"]},
                         "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]}}).encode()
    base = f"http://{registry}"
    _upload(base, name, layer)
    _upload(base, name, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": _digest(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                    "digest": _digest(layer)}]}).encode()
    put = urllib.request.Request(f"{base}/v2/{name}/manifests/{tag}", data=manifest, method="PUT",
                                 headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    urllib.request.urlopen(put, timeout=30).close()


def registry_tags(registry: str, name: str) -> list[str]:
    from dsbuild.builder.registry import Registry

    from tests.builder.test_registry_gc import tags

    return tags(Registry(registry), name)


def delete_image(registry: str, name: str, tag: str) -> None:
    """Remove NAME:TAG from the registry, if there (the test's own images)."""
    import urllib.error

    accept = "application/vnd.docker.distribution.manifest.v2+json"
    head = urllib.request.Request(f"http://{registry}/v2/{name}/manifests/{tag}", method="HEAD",
                                  headers={"Accept": accept})
    try:
        with urllib.request.urlopen(head, timeout=10) as answer:
            digest = answer.headers["Docker-Content-Digest"]
        urllib.request.urlopen(urllib.request.Request(f"http://{registry}/v2/{name}/manifests/{digest}",
                                                      method="DELETE"), timeout=10).close()
    except urllib.error.HTTPError as err:
        assert err.code == 404, err
