"""python -m benchmarks.scale [--users N] [--concurrency C] [--through-hub [--rate R] [--compare SETTING]]

Spawns N simulated users through DsbuildSpawner (its own start/poll/stop, as
JupyterHub calls them) against the real test cluster, on simulated CPU and GPU
nodes sized for the run, then prints spawns per second, p50/p99 time to running,
and the placement the real scheduler chose. Starts the test cluster if it is not
running (and stops it afterwards); removes every node, volume and namespace it
added either way.

--through-hub drives JupyterHub instead, the way users do, all through
configurable-http-proxy: log in (the login form of the dummy authenticator, as
the Helm chart installs it), start a server with the spawn form, read the
progress stream until ready, GET /user/NAME/api/status until the server answers
through the proxy, stop it. The hub is a local JupyterHub process configured by
the same code as `dsbuild hub up` and the chart (render_hub_config), spawning
with KubeLaunchSpawner on the kwok-only test cluster (start.sh --no-node; it
needs root for its route). Simulated pods answer HTTP through one asyncio stub
on this machine, reachable at their addresses by a local route for a free /16
(ip route add local CIDR dev lo), removed at the end, also on Ctrl-C. Users
arrive at --rate per second; each round has a fresh hub and new users; every
--compare SETTING adds a round with that hub setting, side by side. Prints
logins per second, p50/p99 login-to-running, spawns throttled (429) and the
CPU seconds of the hub and the proxy (/proc). Users, pods, claims, nodes,
volumes, the route and the processes are removed at the end. Caps: 2000 users,
1800 s per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.cluster import objects
from tests.cluster.hub import make_spawner, spawn
from tests.cluster.kube import Kubectl

from . import percentile, say
from .placement import check_placement
from .workload import shape_for, users

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "tests" / "cluster"
RUN_DIR = ROOT / ".run" / "cluster"
BENCH_LABEL = "dsbuild.io/bench"



def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def start_cluster(*start_args: str) -> tuple[Kubectl, bool]:
    was_running = _alive(RUN_DIR / "pids" / "kube-apiserver.pid")
    done = subprocess.run([str(CLUSTER / "start.sh"), *start_args], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"scale: tests/cluster/start.sh failed (exit {done.returncode}); see {RUN_DIR / 'logs'}")
    kubeconfig = Path(done.stdout.strip().splitlines()[-1])
    return Kubectl(Path((RUN_DIR / "bin").read_text().strip()) / "kubectl", kubeconfig), not was_running


def prepare(kubectl: Kubectl, namespace: str, population, shape, run_id: str, *,
            pod_cidrs: list[str] | None = None, volumes_per_user: int = 1) -> None:
    """The run's namespace, nodes (with `pod_cidrs`, kwok's pods take their addresses
    from them), a home volume per user and round, and the shared datasets claim."""
    labels = {BENCH_LABEL: run_id}
    nodes = objects.nodes(shape.cpu_nodes, shape.a100_nodes, shape.t4_nodes, prefix=f"bench-{run_id}", labels=labels)
    for node, cidr in zip(nodes, pod_cidrs or []):
        node["spec"].update({"podCIDR": cidr, "podCIDRs": [cidr]})
    volumes = [objects.persistent_volume(f"bench-{run_id}-{i:05d}", "10Gi", pool=f"bench-{run_id}")
               for i in range(len(population) * volumes_per_user)]
    volumes.append(objects.persistent_volume(f"bench-{run_id}-datasets", "100Gi", pool=f"bench-{run_id}",
                                             access_mode="ReadOnlyMany", storage_class=""))
    kubectl("create", "-f", "-", input=_list([{"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": namespace}}, *nodes]))
    for start in range(0, len(volumes), 500):
        kubectl("create", "-f", "-", input=_list(volumes[start:start + 500]))
    kubectl("create", "-f", "-", input=_list([{
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "shared-datasets", "namespace": namespace},
        "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "", "volumeName": f"bench-{run_id}-datasets",
                 "resources": {"requests": {"storage": "100Gi"}}}}]))
    kubectl("wait", "--for=condition=Ready", "node", "-l", f"{BENCH_LABEL}={run_id}", "--timeout=120s")
    kubectl.wait_for(lambda: kubectl.get("serviceaccount", "default", namespace=namespace), "default service account")


def cleanup(kubectl: Kubectl, namespace: str, run_id: str) -> None:
    kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s", check=False)
    kubectl("delete", "pv", "-l", f"{objects.PV_POOL_LABEL}=bench-{run_id}", "--wait=false", check=False)
    kubectl("delete", "node", "-l", f"{BENCH_LABEL}={run_id}", "--wait=false", check=False)


def cluster_latencies(pods: list[dict]) -> tuple[list[float], list[float]]:
    """Seconds from creation to PodScheduled, and from PodScheduled to Ready, per pod."""
    from datetime import datetime

    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    scheduled, started = [], []
    for pod in pods:
        conditions = {c["type"]: c for c in pod["status"].get("conditions") or []}
        if "PodScheduled" in conditions and "Ready" in conditions:
            created = at(pod["metadata"]["creationTimestamp"])
            placed = at(conditions["PodScheduled"]["lastTransitionTime"])
            scheduled.append(placed - created)
            started.append(at(conditions["Ready"]["lastTransitionTime"]) - placed)
    return scheduled, started


def _list(items) -> str:
    return json.dumps(objects.as_list(items))


async def spawn_all(population, namespace: str, concurrency: int, unschedulable_timeout: float, run_id: str):
    gate = asyncio.Semaphore(concurrency)
    results = {}

    async def one(user):
        async with gate:
            # Only this run's nodes (the standing test nodes may be in use by tests).
            spawner = make_spawner(user.name, namespace, unschedulable_timeout=unschedulable_timeout,
                                   start_timeout=600, k8s_api_request_retry_timeout=120,
                                   node_selector={BENCH_LABEL: run_id})
            t0 = time.monotonic()
            try:
                await spawn(spawner, user.options)
                results[user.name] = (spawner, time.monotonic() - t0, None)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                results[user.name] = (spawner, time.monotonic() - t0, e)

    t0 = time.monotonic()
    await asyncio.gather(*(one(u) for u in population))
    return results, time.monotonic() - t0


async def stop_all(spawners, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(spawner):
        async with gate:
            await spawner.stop()

    t0 = time.monotonic()
    await asyncio.gather(*(one(s) for s in spawners))
    return time.monotonic() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale",
                                     description="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200, help="simulated users (default 200)")
    parser.add_argument("--concurrency", type=int, default=50, help="spawns in flight at once (default 50)")
    parser.add_argument("--gpu-share", type=float, default=0.1, help="share of users asking for GPUs (default 0.1)")
    parser.add_argument("--gpu-capacity", type=float, default=0.8,
                        help="GPU nodes for this share of the GPU demand (default 0.8: some GPU spawns must fail)")
    parser.add_argument("--unschedulable-timeout", type=float, default=10,
                        help="the spawner's unschedulable_timeout for the run (default 10 s)")
    hub = parser.add_argument_group("through the hub (--through-hub)")
    hub.add_argument("--through-hub", action="store_true",
                     help="drive a local JupyterHub through its proxy as users do (see above)")
    hub.add_argument("--release", action="store_true",
                     help="drive the project's Helm chart installed into the test cluster (hub and proxy as pods "
                          "on its real node) instead of a local hub; needs the real node (run under its lock)")
    hub.add_argument("--rate", type=float, default=10, help="users arriving (logging in) per second (default 10)")
    hub.add_argument("--duration", type=float, default=900,
                     help="a round's limit in seconds; users not running by then count as failed (default 900)")
    hub.add_argument("--hub-setting", action="append", default=[], metavar="CLASS.TRAIT=VALUE",
                     help="a hub setting for every round, e.g. JupyterHub.concurrent_spawn_limit=500 (repeatable)")
    hub.add_argument("--compare", action="append", default=[], metavar="CLASS.TRAIT=VALUE",
                     help="one more round with this setting added, side by side with the first (repeatable; "
                          "several settings for one round separated by ';')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("traitlets").setLevel(logging.ERROR)  # failures are counted in the table
    if args.through_hub:
        return main_through_hub(parser, args)

    population = users(args.users, args.gpu_share)
    shape = shape_for(population, args.gpu_capacity)
    kubectl, started_here = start_cluster()
    run_id = uuid.uuid4().hex[:6]
    namespace = f"dsbuild-bench-{run_id}"
    try:
        say(f"{args.users} users on {shape.cpu_nodes} CPU, {shape.a100_nodes} A100 and {shape.t4_nodes} T4 "
            f"nodes; GPUs asked {shape.gpu_demand}, available {shape.gpu_supply}")
        prepare(kubectl, namespace, population, shape, run_id)
        report, placed_right = asyncio.run(_run(kubectl, population, namespace, args))
        print(report)
    finally:
        say("cleaning up")
        cleanup(kubectl, namespace, run_id)
        if started_here:
            subprocess.run([str(CLUSTER / "stop.sh")], check=False)
    return 0 if placed_right else 1


def main_through_hub(parser: argparse.ArgumentParser, args) -> int:
    from .hubproc import Setting
    from .hubrun import MAX_DURATION, MAX_USERS, hub_catalog, local_round, run_through_hub
    from .simnet import PodNetwork, PodNetworkError

    if not 0 < args.users <= MAX_USERS or not 0 < args.duration <= MAX_DURATION or args.rate <= 0:
        parser.error(f"--users is 1..{MAX_USERS}, --duration 1..{MAX_DURATION:.0f} s, --rate above 0")
    try:
        common = [Setting.parse(t) for t in args.hub_setting]
        rounds = [common] + [common + [Setting.parse(s) for s in t.split(";")] for t in args.compare]
    except ValueError as err:
        parser.error(str(err))
    if os.geteuid() != 0:
        sys.exit("scale: --through-hub adds a local route for the simulated pods' addresses; run it as root")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally blocks below clean up
    population = users(args.users, gpu_share=0)
    shape = shape_for(population)
    kubectl, started_here = start_cluster() if args.release else start_cluster("--no-node")
    run_id = uuid.uuid4().hex[:6]
    namespace = f"dsbuild-bench-{run_id}"
    network = PodNetwork(ROOT / ".run" / "scale-hub")
    state = ROOT / ".run" / "scale-hub" / run_id  # the rounds' hubs: config, secrets, database, logs
    release, ok = None, False
    try:
        network.open()
        nodes = shape.cpu_nodes + shape.a100_nodes + shape.t4_nodes
        say(f"run {run_id}: {args.users} users per round, {len(rounds)} round(s), on {nodes} simulated nodes; "
            f"pods in {network.cidr}")
        prepare(kubectl, namespace, population, shape, run_id, pod_cidrs=network.node_cidrs(nodes),
                volumes_per_user=len(rounds))
        if args.release:
            from .release import install_release, release_round

            release = install_release(kubectl, namespace, {BENCH_LABEL: run_id}, hub_catalog(), RUN_DIR)
            opened = release_round(release)
        else:
            opened = local_round(kubectl, namespace, {BENCH_LABEL: run_id}, state)
        report, ok = asyncio.run(run_through_hub(kubectl, namespace, population, rounds, args.rate, args.duration,
                                                 network, opened))
        print(report)
    except (PodNetworkError, RuntimeError) as err:
        sys.exit(f"scale: {err}")
    finally:
        say("cleaning up")
        try:
            if release is not None:
                from .release import uninstall_release
                uninstall_release(release, f"{objects.PV_POOL_LABEL}=bench-{run_id}")
        finally:  # a release's clean-up that fails still stops what the run started
            network.close()
            shutil.rmtree(state, ignore_errors=True)
            cleanup(kubectl, namespace, run_id)
            if started_here:
                subprocess.run([str(CLUSTER / "stop.sh")], check=False)
    return 0 if ok else 1


async def _run(kubectl: Kubectl, population, namespace: str, args) -> tuple[str, bool]:
    import kubernetes_asyncio.config.kube_config as kube_config
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubectl.kubeconfig)
    load_config.cache_clear()
    try:
        say(f"spawning {len(population)} users, {args.concurrency} at a time")
        cpu0 = time.process_time()
        results, spawn_wall = await spawn_all(population, namespace, args.concurrency, args.unschedulable_timeout,
                                              namespace.rsplit("-", 1)[1])
        client_cpu = time.process_time() - cpu0
        pods = kubectl.get("pod", namespace=namespace)
        nodes = kubectl.get("node", selector=BENCH_LABEL)
        placement = check_placement(pods, nodes, {u.name: u for u in population})
        ok = [(s, t) for s, t, e in results.values() if e is None]
        failed = [(s, e) for s, _, e in results.values() if e is not None]
        say(f"stopping {len(ok)} servers")
        stop_wall = await stop_all([s for s, _ in ok], args.concurrency)
        left = kubectl.get("pod", namespace=namespace)
    finally:
        await KubeSpawner._stop_all_reflectors()
    times = [t for _, t in ok]
    scheduled, started = cluster_latencies(pods)
    reasons = {}
    for _, e in failed:
        key = "no GPU node has room (scheduler: Insufficient nvidia.com/gpu)" \
            if "Insufficient nvidia.com/gpu" in str(e) else f"{type(e).__name__}: {str(e)[:120]}"
        reasons[key] = reasons.get(key, 0) + 1
    lines = [
        "",
        f"{'users':>6} {'conc':>5} {'running':>8} {'failed':>7} {'wall s':>8} {'spawns/s':>9} "
        f"{'p50 s':>7} {'p99 s':>7} {'max s':>7} {'stops/s':>8}",
        f"{len(population):>6} {args.concurrency:>5} {len(ok):>8} {len(failed):>7} {spawn_wall:>8.1f} "
        f"{len(ok) / spawn_wall:>9.1f} {percentile(times, 50):>7.2f} {percentile(times, 99):>7.2f} "
        f"{max(times, default=float('nan')):>7.2f} {len(ok) / stop_wall if stop_wall else 0:>8.1f}",
        "",
        f"inside the cluster (1 s resolution): created -> scheduled p50 {percentile(scheduled, 50):.0f} s, "
        f"p99 {percentile(scheduled, 99):.0f} s; scheduled -> running p50 {percentile(started, 50):.0f} s, "
        f"p99 {percentile(started, 99):.0f} s; the spawning process used {client_cpu:.0f} s of CPU "
        f"({client_cpu / spawn_wall:.0%} of one core)",
        "failures: " + ("none" if not reasons else "; ".join(f"{n} x {r}" for r, n in reasons.items())),
        *placement.lines(),
        f"pods left after stop: {len(left)}",
    ]
    return "\n".join(lines), placement.ok and not left


if __name__ == "__main__":
    sys.exit(main())
