"""python -m benchmarks.node [--repetitions N]

Spawns on the test cluster's real node (tests/cluster/node.sh) through the hub
on Kubernetes (`dsbuild hub up --spawner kubernetes`: JupyterHub,
configurable-http-proxy, KubeLaunchSpawner) and times, from the spawn request
(POST /hub/api/users/NAME/server) to JupyterLab answering
`GET /user/NAME/api/status` THROUGH THE PROXY with the user's token: the first
start of an image the node has never pulled; starts of a new user with the
image on the node (a new home volume, filled by home-init); and stops and
starts of a returning user. Beside each: when JupyterLab first answered on the
pod's own IP, and where the time went (pod created, scheduled, home-init,
container started), from a watch on the pods. Then builds a second repository
(same JupyterLab layer, other files) and counts the bytes the node pulls for
it against its image's size. Needs the cluster running with its node
(tests/cluster/start.sh, under the real node's lock); removes what it makes,
not the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from pathlib import Path
from unittest import mock

import yaml

from benchmarks.node_timing import PodWatch, Start, time_start
from dsbuild.launch.hubapi import HubClient
from dsbuild.launch import localhub
from dsbuild.launch.localhub import hub_down
from tests.cluster import nodehub, realnode
from tests.cluster.kube import Kubectl

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


def build_images(folder: Path, registry: str, run_id: str) -> list[str]:
    """Two repositories built and pushed the production way: the second has the
    same JupyterLab layer and one more notebook."""
    images = []
    for which in ("one", "two"):
        repo = realnode.make_repo(folder / which)
        if which == "two":
            (repo / "notebooks" / "second.ipynb").write_text(realnode.notebook_json("Second repository."))
            subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
            subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b.invalid",
                            "commit", "-qm", "second notebook"], check=True)
        say(f"building and pushing repository {which}")
        images.append(realnode.build_and_push(repo, registry, f"dsbuild-bench-node-{which}-{run_id}"))
    return images


class Bench:
    """The hub's REST API with its service's token (dsbuild serve's role): users,
    their tokens, starts and stops."""

    def __init__(self, hub, watch: PodWatch):
        token = (hub.state_dir / "service_token").read_text().strip()
        self.api = HubClient(hub.hub_url + "hub/api/", token, timeout=120)
        self.hub_url = hub.hub_url
        self.watch = watch
        self.tokens: dict[str, str] = {}

    async def new_user(self, name: str) -> None:
        await self.api.create_user(name)
        self.tokens[name] = await self.api.create_token(name, 3600, "benchmarks/node.py",
                                                        [f"access:servers!user={name}"])

    async def start(self, name: str, environment: str) -> Start:
        return await time_start(self.api, self.watch, self.hub_url, name, self.tokens[name],
                                {"environment": environment})

    async def stop(self, name: str) -> None:
        await self.api.stop_server(name)
        for _ in range(600):
            user = await self.api.get_user(name)
            if not (user or {}).get("servers") and not self.watch.has_pod(name):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the server of {name} did not stop")

    async def remove_users(self) -> None:
        for name in self.tokens:
            await self.api.stop_server(name)
        for name in self.tokens:
            await self.stop(name)
            await self.api.delete_user(name)


async def measure(bench: Bench, run_id: str, repetitions: int, registry: str, second_image: str) -> dict:
    first = f"b{run_id}-first"
    await bench.new_user(first)
    say("first start: the node pulls the image")
    result: dict = {"first_pull": (await bench.start(first, "one")).as_dict()}
    await bench.stop(first)
    result["new_user"], result["returning_user"] = [], []
    for i in range(repetitions):
        say(f"new user {i + 1}/{repetitions}, image on the node")
        name = f"b{run_id}-new{i}"
        await bench.new_user(name)
        result["new_user"].append((await bench.start(name, "one")).as_dict())
        await bench.stop(name)
    for i in range(repetitions):
        say(f"returning user, start {i + 1}/{repetitions}, image on the node")
        result["returning_user"].append((await bench.start(first, "one")).as_dict())
        await bench.stop(first)
    before, second_layers = node_content(), layers(registry, second_image)
    say("the second repository's first start")
    second = f"b{run_id}-second"
    await bench.new_user(second)
    result["second_repo_first_start"] = (await bench.start(second, "two")).as_dict()
    await bench.stop(second)
    result["second_repo_bytes"] = sum(second_layers.values())
    result["second_repo_pulled_bytes"] = sum(size for digest, size in second_layers.items() if digest not in before)
    return result


async def run_against_hub(hub, kubectl: Kubectl, run_id: str, repetitions: int, registry: str, images) -> dict:
    watch = PodWatch(kubectl.kubeconfig, nodehub.NAMESPACE)
    await watch.start()
    bench = Bench(hub, watch)
    try:
        return await measure(bench, run_id, repetitions, registry, images[1])
    finally:
        try:
            await bench.remove_users()
        finally:
            await watch.close()


@contextlib.contextmanager
def spawner_setting(name: str, value: float | None):
    """`dsbuild hub up` writing one more KubeLaunchSpawner setting into the hub's
    configuration (for comparing a setting's values; `hub up` has no option for it)."""
    if value is None:
        yield
        return
    original = localhub.render_hub_config
    with mock.patch.object(localhub, "render_hub_config",
                           lambda *a, **kw: original(*a, **kw) + f"\nc.KubeLaunchSpawner.{name} = {value!r}\n"):
        yield


def run(node: realnode.RealNode, kubectl: Kubectl, folder: Path, run_id: str, repetitions: int,
        images: list[str], ready_check_interval: float | None = None) -> dict:
    catalog = {k: v for k, v in realnode.catalog(images[0]).items() if k != "data_volumes"}
    catalog["environments"] = {name: {"image": image, "display_name": name}
                               for name, image in zip(("one", "two"), images, strict=True)}
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    hub_kubeconfig = nodehub.write_hub_kubeconfig(kubectl, folder / "hub-kubeconfig")
    nodehub.pin_to_real_node(kubectl)
    hub = None
    try:
        with spawner_setting("ready_check_interval", ready_check_interval):
            hub = nodehub.start_hub(folder, node.registry, hub_kubeconfig, folder / "catalog.yaml",
                                    uuid.uuid4().hex, mode="authenticated", authenticator="dummy",
                                    service_url=f"http://127.0.0.1:{nodehub.free_port()}/")
        return asyncio.run(run_against_hub(hub, kubectl, run_id, repetitions, node.registry, images))
    finally:
        if hub is not None:
            hub_down(hub.state_dir, say=say)
        nodehub.unpin(kubectl)
        nodehub.remove_hub_account(kubectl)


def print_table(result: dict) -> None:
    def row(what: str, starts: list[dict]) -> None:
        for key, where in (("proxy_s", "through the proxy"), ("pod_ip_s", "on the pod IP")):
            values = [s[key] for s in starts]
            spread = f" ({min(values):.2f}–{max(values):.2f}, n={len(values)})" if len(values) > 1 else ""
            print(f"| Spawn to JupyterLab answering {where}, {what} (s) | {statistics.median(values):.2f}{spread} |")

    row("first pull", [result["first_pull"]])
    row("image on the node, new user", result["new_user"])
    row("image on the node, returning user", result["returning_user"])
    share = result["second_repo_pulled_bytes"] / result["second_repo_bytes"]
    print(f"| Second repository: bytes pulled / image bytes (compressed) | "
          f"{result['second_repo_pulled_bytes'] / 1e6:.1f} MB / {result['second_repo_bytes'] / 1e6:.1f} MB "
          f"= {share:.1%} |")
    for what in ("new_user", "returning_user"):
        phases = {k for s in result[what] for k in s["phases"]}
        medians = {k: statistics.median(s["phases"][k] for s in result[what] if k in s["phases"]) for k in phases}
        print(f"where the time goes ({what}, median s after the request): "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(medians.items(), key=lambda kv: kv[1])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node", description=__doc__.split("\n\n")[1])
    parser.add_argument("--repetitions", type=int, default=5, help="starts of each kind with the image cached")
    parser.add_argument("--ready-check-interval", type=float, default=None,
                        help="DsbuildSpawner.ready_check_interval for the hub (0: KubeSpawner's and JupyterHub's "
                             "own backoff waits); default: the spawner's default")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    env = realnode.cluster_env(RUN_DIR)
    if "DSBUILD_CLUSTER_NODE" not in env:
        sys.exit("node: the test cluster is not running with its real node (tests/cluster/start.sh)")
    node = realnode.RealNode(env["DSBUILD_CLUSTER_NODE"], env["DSBUILD_CLUSTER_REGISTRY"])
    kubectl = Kubectl(Path((RUN_DIR / "bin").read_text().strip()) / "kubectl", RUN_DIR / "kubeconfig")
    run_id = uuid.uuid4().hex[:6]
    images: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dsbuild-bench-node-") as tmp:
        try:
            images = build_images(Path(tmp), node.registry, run_id)
            result = run(node, kubectl, Path(tmp), run_id, args.repetitions, images, args.ready_check_interval)
        finally:
            for image in images:
                done = subprocess.run(["docker", "image", "rm", image], capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    say(f"could not remove {image}: {done.stderr.strip()} (remove it with `docker image rm`)")
    print(json.dumps(result, indent=1))
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
