"""python -m benchmarks.node [--repetitions N]

Spawns on the test cluster's real node (tests/cluster/node.sh) through
DsbuildSpawner and measures, from the spawn request to JupyterLab answering
`GET /api/status` on the pod's IP: the first start of an image the node has
never pulled, and starts with the image already on the node. Then builds a
second repository (same JupyterLab layer, other files) and counts the bytes
the node pulls for it against its image's size. Needs the cluster running with
its node (tests/cluster/start.sh); removes what it makes, not the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from tests.cluster import realnode
from tests.cluster.hub import make_spawner, spawn
from tests.cluster.kube import Kubectl
from tests.cluster.test_real_node import LAB_ARGS, wait_for_lab

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run" / "cluster"


def say(message: str) -> None:
    print(f"[node] {message}", file=sys.stderr, flush=True)


def layers(registry: str, image: str) -> dict[str, int]:
    """The image's layers in the registry: digest -> compressed size."""
    name, tag = image.removeprefix(registry + "/").rsplit(":", 1)
    request = urllib.request.Request(f"http://{registry.replace('localhost', '127.0.0.1')}/v2/{name}/manifests/{tag}",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json,"
                                                        "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        manifest = json.load(response)
    return {layer["digest"]: layer["size"] for layer in manifest["layers"]}


def node_content() -> set[str]:
    """Digests of the blobs the node's containerd holds."""
    sock = RUN_DIR / "node" / "containerd.sock"
    out = subprocess.run(["ctr", "--address", str(sock), "-n", "k8s.io", "content", "ls", "-q"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def setup_namespace(kubectl: Kubectl, name: str, folder: Path, node: str) -> None:
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    (folder / "datasets").mkdir()
    kubectl.apply(realnode.data_volume(f"bench-{name}", folder / "datasets", node))
    kubectl.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": realnode.DATA_CLAIM, "namespace": name},
                   "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": f"bench-{name}",
                            "resources": {"requests": {"storage": "1Gi"}}}})
    kubectl.wait_for(lambda: kubectl.get("serviceaccount", "default", namespace=name), "default service account")


async def spawn_to_ready(node: realnode.RealNode, image: str, user: str, namespace: str) -> float:
    spawner = make_spawner(user, namespace, catalog=realnode.catalog(image), **node.spawner_config(
        cmd=["jupyter", "lab"], args=LAB_ARGS))
    t0 = time.perf_counter()
    url = await spawn(spawner, {})
    await asyncio.to_thread(wait_for_lab, url, 300)
    took = time.perf_counter() - t0
    await spawner.stop()
    return took


async def measure(node, kubectl, images, namespace, repetitions) -> dict:
    from kubernetes_asyncio.config import kube_config
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubectl.kubeconfig)
    load_config.cache_clear()
    try:
        say("first start: the node pulls the image")
        first = await spawn_to_ready(node, images[0], "first", namespace)
        cached = []
        for i in range(repetitions):
            say(f"start {i + 1}/{repetitions} with the image on the node")
            cached.append(await spawn_to_ready(node, images[0], f"cached{i}", namespace))
        before = node_content()
        second_layers = layers(node.registry, images[1])
        say("the second repository's first start")
        second = await spawn_to_ready(node, images[1], "second", namespace)
        pulled = sum(size for digest, size in second_layers.items() if digest not in before)
    finally:
        await KubeSpawner._stop_all_reflectors()
    return {"first_pull_s": first, "cached_s": cached, "second_repo_first_start_s": second,
            "second_repo_bytes": sum(second_layers.values()), "second_repo_pulled_bytes": pulled}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node", description=__doc__.split("\n\n")[1])
    parser.add_argument("--repetitions", type=int, default=3, help="starts with a cached image (default 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    env = realnode.cluster_env(RUN_DIR)
    if "DSBUILD_CLUSTER_NODE" not in env:
        sys.exit("node: the test cluster is not running with its real node (tests/cluster/start.sh)")
    node = realnode.RealNode(env["DSBUILD_CLUSTER_NODE"], env["DSBUILD_CLUSTER_REGISTRY"])
    kubectl = Kubectl(Path((RUN_DIR / "bin").read_text().strip()) / "kubectl", RUN_DIR / "kubeconfig")
    run_id = uuid.uuid4().hex[:6]
    namespace = f"dsbuild-bench-node-{run_id}"
    images: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dsbuild-bench-node-") as tmp:
        folder = Path(tmp)
        try:
            for which in ("one", "two"):
                repo = realnode.make_repo(folder / which)
                if which == "two":  # other files, same JupyterLab layer
                    (repo / "notebooks" / "second.ipynb").write_text(realnode.notebook_json("Second repository."))
                    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
                    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b.invalid",
                                    "commit", "-qm", "second notebook"], check=True)
                say(f"building and pushing repository {which}")
                images.append(realnode.build_and_push(repo, node.registry, f"dsbuild-bench-node-{which}-{run_id}"))
            setup_namespace(kubectl, namespace, folder, node.name)
            result = asyncio.run(measure(node, kubectl, images, namespace, args.repetitions))
        finally:
            kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=120s", check=False)
            kubectl.recycle_volumes(namespace)
            kubectl("delete", "pv", f"bench-{namespace}", "--wait=false", check=False)
            for image in images:
                done = subprocess.run(["docker", "image", "rm", image], capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    say(f"could not remove {image}: {done.stderr.strip()} (remove it with `docker image rm`)")
    share = result["second_repo_pulled_bytes"] / result["second_repo_bytes"]
    print(json.dumps(result, indent=1))
    print(f"| Spawn to JupyterLab answering, first pull (s) | {result['first_pull_s']:.2f} |")
    cached = result["cached_s"]
    print(f"| Spawn to JupyterLab answering, image on the node (s) | {statistics.median(cached):.2f} "
          f"({min(cached):.2f}–{max(cached):.2f}) |")
    print(f"| Second repository: bytes pulled / image bytes (compressed) | "
          f"{result['second_repo_pulled_bytes'] / 1e6:.1f} MB / {result['second_repo_bytes'] / 1e6:.1f} MB "
          f"= {share:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
