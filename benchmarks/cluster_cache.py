"""A cluster build of a repository after another repository with the same packages: on
the node's build daemon with its cache (what `serve --build-on kubernetes` does now)
against a cold daemon (an empty cache: what every build pod had when each ran a fresh
buildkitd).

    flock /work/wt/_brief/realnode.lock -c 'tests/cluster/start.sh && \\
        .venv/bin/python -m benchmarks.cluster_cache; tests/cluster/stop.sh'

The build daemon is put on the test cluster's real node as tests/cluster/test_cluster_builds.py
does (its image from tests/buildkit/image.sh, the base in the cluster's registry). Repository
A is built first (cold), then repository B (other files, the same requirements) with the
daemon's cache; then the daemon is removed with its state on the node, put back empty, and B
is built again (cold). Each time is `build()` with the Kubernetes engine: the build pod's
scheduling, the build on the daemon and the push. Removes what it makes (the namespace, the
daemon's state, the bridge), not the cluster.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from dsbuild.builder.host import read_host_settings  # noqa: E402
from dsbuild.builder.progress import StepCached, StepDone  # noqa: E402
from dsbuild.builder.registry import Registry  # noqa: E402
from dsbuild.builder.service import BuildRequest  # noqa: E402
from dsbuild.builder.source import LocalSource  # noqa: E402
from dsbuild.launch.build_daemon import BUILD_BRIDGE, DAEMON_LABELS, DAEMON_NAME  # noqa: E402
from dsbuild.launch.preflight import engine_for  # noqa: E402
from tests.buildkit.daemon import buildkit_bin  # noqa: E402
from tests.cluster import realnode  # noqa: E402
from tests.cluster.kube import Kubectl  # noqa: E402
from tests.cluster.test_cluster_builds import daemon_root, launch_config  # noqa: E402
from tests.security.conftest import run_build, write_repo  # noqa: E402

from .common import log  # noqa: E402
from .node import RUN_DIR  # noqa: E402

REQUIREMENTS = "toolz==0.12.1\nsix==1.16.0\nattrs==24.2.0\n"


def _push_base(registry: str) -> None:
    from dsbuild.builder.engine import DockerEngine
    from dsbuild.builder.pythons import DEFAULT_SUITE, base_ref

    docker, pushed = DockerEngine(), f"{registry}/{base_ref(DEFAULT_SUITE)}"
    docker.tag(base_ref(DEFAULT_SUITE), pushed)
    try:
        docker.push(pushed)
    finally:
        docker.remove_image(pushed)


def _timed_build(cfg, repo: Path, name: str) -> tuple[float, str]:
    """Seconds, and which phases were cached and which ran (with their seconds)."""
    request = BuildRequest(LocalSource(repo), host=read_host_settings(), name=name,
                           registry=Registry(cfg.registry), push=True, force=True)
    start = time.monotonic()
    _, events, error = run_build(request, engine_for(cfg))
    seconds = time.monotonic() - start
    if error is not None:
        raise SystemExit(f"the build of {repo.name} failed: {error}")
    cached = sorted({e.phase for e in events if isinstance(e, StepCached)})
    ran = [f"{e.phase} {e.seconds:.1f}" for e in events if isinstance(e, StepDone)]
    return seconds, f"cached: {', '.join(cached) or 'none'}; ran: {', '.join(ran) or 'none'}"


def _daemon_up(kubectl: Kubectl, cfg) -> None:
    """The daemon in place and ready (not timed)."""
    engine_for(cfg).ensure_daemons()
    kubectl("rollout", "status", f"daemonset/{DAEMON_NAME}", "-n", cfg.build_namespace, "--timeout=180s")


def _reset_daemon(kubectl: Kubectl, cfg) -> None:
    """The daemon and its state go; it comes back empty."""
    selector = ",".join(f"{k}={v}" for k, v in DAEMON_LABELS.items())
    kubectl("delete", "daemonset", DAEMON_NAME, "-n", cfg.build_namespace, "--wait=true")
    kubectl("wait", "--for=delete", "pod", "-l", selector, "-n", cfg.build_namespace, "--timeout=120s", check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(daemon_root(cfg.build_namespace))], check=True)
    _daemon_up(kubectl, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    env = realnode.cluster_env(RUN_DIR)
    kubectl = Kubectl(Path((RUN_DIR / "bin").read_text().strip()) / "kubectl", RUN_DIR / "kubeconfig")
    node = realnode.RealNode(env["DSBUILD_CLUSTER_NODE"], env["DSBUILD_CLUSTER_REGISTRY"])
    namespace = f"dsbuild-bench-{uuid.uuid4().hex[:6]}"
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}})
    os.environ.setdefault("DSBUILD_BUILDCTL", str(buildkit_bin() / "buildctl"))
    try:
        with tempfile.TemporaryDirectory(prefix="dsbuild-bench-") as tmp:
            os.environ["DSBUILD_CACHE_DIR"] = str(Path(tmp) / "cache")
            image = subprocess.run(["tests/buildkit/image.sh", node.registry], check=True, capture_output=True,
                                   text=True).stdout.strip().splitlines()[-1]
            _push_base(node.registry)
            cfg = launch_config(kubectl.kubeconfig, node, image, namespace)
            _daemon_up(kubectl, cfg)
            first = write_repo(Path(tmp) / "a", {"requirements.txt": REQUIREMENTS, "a.md": "# A\n"})
            second = write_repo(Path(tmp) / "b", {"requirements.txt": REQUIREMENTS, "b.md": "# B\n"})
            load = [os.getloadavg()[0]]
            log("repository A, cold daemon")
            cold_first = _timed_build(cfg, first, f"{cfg.image_prefix}-a")
            log("repository B after A, the daemon's cache")
            warm = _timed_build(cfg, second, f"{cfg.image_prefix}-b")
            load.append(os.getloadavg()[0])
            cfg = launch_config(kubectl.kubeconfig, node, image, namespace)  # a new image prefix: a new build
            _reset_daemon(kubectl, cfg)
            log("repository B, cold daemon")
            cold = _timed_build(cfg, second, f"{cfg.image_prefix}-b")
            load.append(os.getloadavg()[0])
    finally:
        kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=180s", check=False)
        subprocess.run(["ip", "link", "delete", BUILD_BRIDGE], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(daemon_root(namespace))], check=False)
        subprocess.run(["rmdir", str(daemon_root(namespace).parent)], capture_output=True)
    print(f"| cluster build (build pod, daemon build, push); {time.strftime('%H:%M UTC', time.gmtime())}, "
          f"load {' → '.join(f'{x:.1f}' for x in load)} | seconds | steps |")
    print("|---|---:|---|")
    print(f"| repository A, empty daemon | {cold_first[0]:.1f} | {cold_first[1]} |")
    print(f"| repository B (same packages) after A, the daemon's cache | {warm[0]:.1f} | {warm[1]} |")
    print(f"| repository B, empty daemon (as a fresh build pod) | {cold[0]:.1f} | {cold[1]} |")


if __name__ == "__main__":
    main()
