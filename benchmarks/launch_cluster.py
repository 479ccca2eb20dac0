"""A code-only commit's launch link, to JupyterLab, on the cluster against one machine.

    flock /work/wt/_brief/realnode.lock -c 'tests/cluster/start.sh && \\
        .venv/bin/python -m benchmarks.launch_cluster --runs 3; tests/cluster/stop.sh'

Two hubs side by side, each with its own `dsbuild serve` (anonymous mode, the default
settings, no pool): the local hub (`dsbuild hub up`: containers on the local Docker
engine) and the hub on Kubernetes (`dsbuild hub up --spawner kubernetes`: pods on the
test cluster's real node, as benchmarks/node.py sets it up; the service builds on the
local engine and pushes to the cluster's registry, the node pulls). The same small
repository (a README and a notebook, no requirements) is launched through both: a first
launch each (not timed: the environment's build, the node's first pull), then per run a
code-only commit and its link through each hub in turn (benchmarks/launch_link.py's
steps). Last, a second repository (other files and one small requirement: a dependency
layer of its own on the same JupyterLab layer) is launched once through the cluster: its time to JupyterLab, and the bytes the node pulled for it
against its image's compressed size. Needs the cluster running with its node; removes
what it makes (users, servers, hubs, images), not the cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import yaml  # noqa: E402

from dsbuild.builder.engine import DockerEngine  # noqa: E402
from dsbuild.launch.hubconfig import HubOptions  # noqa: E402
from dsbuild.launch.localhub import hub_down, hub_up, remove_containers  # noqa: E402
from tests.cluster import nodehub, realnode  # noqa: E402
from tests.cluster.kube import Kubectl  # noqa: E402
from tests.hubs import delete_users  # noqa: E402

from .common import log  # noqa: E402
from .launch_link import (code_commit, free_port, make_repo, one_launch, remove_images, remove_user,  # noqa: E402
                          settle, start_service, table)
from .node import RUN_DIR, layers, node_content  # noqa: E402


def kube_hub(tmp: Path, node: realnode.RealNode, kubectl: Kubectl) -> HubOptions:
    catalog = {k: v for k, v in realnode.catalog(f"{node.registry}/dsbuild-bench-unused:none").items()
               if k != "data_volumes"}
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    kubeconfig = nodehub.write_hub_kubeconfig(kubectl, tmp / "hub-kubeconfig")
    nodehub.pin_to_real_node(kubectl)
    return nodehub.start_hub(tmp / "kube", node.registry, kubeconfig, tmp / "catalog.yaml", None)


def second_repository(service: str, tmp: Path, registry: str, prefix: str) -> dict:
    """A second repository's first launch through the cluster, and the node's pulled bytes."""
    repo = tmp / "second"
    make_repo(repo)
    (repo / "requirements.txt").write_text("six\n")  # its own dependency layer on the JupyterLab layer
    code_commit(repo, 100)
    before = node_content()
    marks = one_launch(service, repo, prefix)
    image = marks.pop("_image", None)
    user = marks.pop("_user")
    pulled = total = None
    if image:
        image_layers = layers(registry, str(image))
        total = sum(image_layers.values())
        pulled = sum(size for digest, size in image_layers.items() if digest not in before)
    return {"marks": marks, "user": user, "image": image, "pulled_bytes": pulled, "image_bytes": total}


def run(runs: int, tmp: Path) -> dict:
    env = realnode.cluster_env(RUN_DIR)
    if "DSBUILD_CLUSTER_NODE" not in env:
        sys.exit("launch_cluster: the test cluster is not running with its real node (tests/cluster/start.sh)")
    node = realnode.RealNode(env["DSBUILD_CLUSTER_NODE"], env["DSBUILD_CLUSTER_REGISTRY"])
    kubectl = Kubectl(Path((RUN_DIR / "bin").read_text().strip()) / "kubectl", RUN_DIR / "kubeconfig")
    prefix = f"dsbuild-bench-lc-{uuid.uuid4().hex[:6]}"
    local = HubOptions(state_dir=tmp / "local", port=free_port(), proxy_api_port=free_port(), hub_port=free_port(),
                       container_prefix=prefix, hub_label=prefix, cull_timeout=3600)
    repo = tmp / "repo"
    make_repo(repo)
    hubs: dict[str, HubOptions] = {}
    services: dict[str, tuple[subprocess.Popen, str]] = {}
    results: dict[str, list[dict]] = {"one machine": [], "cluster": []}
    second: dict = {}
    load = [os.getloadavg()]
    try:
        hub_up(local, say=log)
        hubs["one machine"] = local
        hubs["cluster"] = kube_hub(tmp, node, kubectl)
        for name, hub in hubs.items():
            services[name] = start_service(hub, f"{prefix}-{len(services)}", tmp, [])
            log(f"first launch through {name} (not timed)")
            remove_user(hub, one_launch(services[name][1], repo, prefix)["_user"])  # type: ignore[arg-type]
        for i in range(1, runs + 1):
            code_commit(repo, i)
            for name, (_, url) in services.items():
                marks = one_launch(url, repo, prefix)
                remove_user(hubs[name], marks.pop("_user"))  # type: ignore[arg-type]
                marks.pop("_image", None)
                settle(url)
                results[name].append(marks)
                log(f"run {i} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in marks.items()))
        second = second_repository(services["cluster"][1], tmp, node.registry, prefix)
        remove_user(hubs["cluster"], second.pop("user"))
        load.append(os.getloadavg())
    finally:
        for process, _ in services.values():
            process.terminate()
            process.wait(90)
        try:
            for name, hub in hubs.items():
                try:
                    delete_users(hub)
                finally:
                    hub_down(hub.state_dir, say=log)
        finally:
            if "cluster" in hubs:
                nodehub.unpin(kubectl)
                nodehub.remove_hub_account(kubectl)
            remove_containers(DockerEngine(), prefix)
            remove_images(prefix)
    return {"results": results, "second": second, "load": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="code-only commits launched through each hub")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dsbuild-bench-lc-") as tmp:
        report = run(args.runs, Path(tmp))
    load = report["load"]
    print(f"code-only commit, link -> JupyterLab through each hub's proxy, {args.runs} runs, median (range); "
          f"load average {load[0][0]:.2f} before, {load[-1][0]:.2f} after ({os.cpu_count()} CPUs)")
    print(table(report["results"]))
    second = report["second"]
    if second:
        marks = second["marks"]
        pulled = second["pulled_bytes"]
        share = f"{pulled / 1e6:.3f} MB of {second['image_bytes'] / 1e6:.1f} MB" if pulled is not None else "?"
        print(f"second repository through the cluster: JupyterLab after {marks['JupyterLab through the proxy']:.2f} s "
              f"(built {marks.get('built', float('nan')):.2f} s); the node pulled {share} (compressed)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
