"""Where the real scheduler put the benchmark's pods, checked: GPU pods only on
nodes of the GPU type they asked for, CPU pods only on CPU nodes, and no node
holding more GPUs, CPU or memory (requests) than it has."""

from __future__ import annotations

from dataclasses import dataclass, field

from dsbuild.spawner.quantities import Cpu, Memory
from tests.cluster import objects

PRODUCT = {"nvidia-a100": objects.A100.gpu_product, "nvidia-t4": objects.T4.gpu_product}


@dataclass
class Placement:
    pods: int = 0
    gpu_pods: int = 0
    gpu_pods_on_their_type: int = 0
    cpu_pods_on_cpu_nodes: int = 0
    pending: int = 0
    problems: list[str] = field(default_factory=list)
    gpu_use: dict[str, tuple[int, int]] = field(default_factory=dict)  # pool -> (used, allocatable)
    busiest: dict[str, str] = field(default_factory=dict)  # pool -> "node: used/allocatable"

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        cpu_pods = self.pods - self.gpu_pods
        out = [
            f"placement: {self.pods} pods; GPU pods on a node of their GPU type: "
            f"{self.gpu_pods_on_their_type}/{self.gpu_pods}; CPU pods on CPU nodes: "
            f"{self.cpu_pods_on_cpu_nodes}/{cpu_pods}; pending: {self.pending}",
        ]
        for pool, (used, total) in sorted(self.gpu_use.items()):
            out.append(f"  {pool}: {used}/{total} GPUs in use (busiest node {self.busiest.get(pool, '-')})")
        out.append("GPUs never over-committed, GPU pods only on GPU nodes: "
                   + ("yes" if self.ok else "NO: " + "; ".join(self.problems[:5])))
        return out


def _requests(pod: dict) -> tuple[float, int, int]:
    cpu = memory = gpus = 0
    for container in pod["spec"]["containers"]:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += Cpu.parse(requests.get("cpu", "0")).cores
        memory += Memory.parse(requests.get("memory", "0")).bytes
        gpus += int(requests.get(objects.GPU_RESOURCE, "0"))
    return cpu, memory, gpus


def check_placement(pods: list[dict], nodes: list[dict], users: dict) -> Placement:
    result = Placement()
    by_name = {n["metadata"]["name"]: n for n in nodes}
    used: dict[str, list] = {name: [0.0, 0, 0] for name in by_name}
    for pod in pods:
        result.pods += 1
        node_name = pod["spec"].get("nodeName")
        if not node_name or pod["status"].get("phase") != "Running":
            result.pending += 1
            continue
        node = by_name.get(node_name)
        if node is None:
            result.problems.append(f"{pod['metadata']['name']} on {node_name}, not a benchmark node")
            continue
        cpu, memory, gpus = _requests(pod)
        totals = used[node_name]
        totals[0] += cpu
        totals[1] += memory
        totals[2] += gpus
        labels = node["metadata"]["labels"]
        user = users.get(pod["metadata"]["labels"].get("hub.jupyter.org/username", ""))
        if gpus:
            result.gpu_pods += 1
            wanted = PRODUCT.get(user.gpu_type) if user else None
            if labels.get("nvidia.com/gpu.product") == wanted and labels[objects.POOL_LABEL] != "cpu":
                result.gpu_pods_on_their_type += 1
            else:
                result.problems.append(f"GPU pod {pod['metadata']['name']} on {node_name}")
        elif labels[objects.POOL_LABEL] == "cpu":
            result.cpu_pods_on_cpu_nodes += 1
        else:
            result.problems.append(f"CPU pod {pod['metadata']['name']} on GPU node {node_name}")
    for name, (cpu, memory, gpus) in used.items():
        allocatable = by_name[name]["status"]["allocatable"]
        pool = by_name[name]["metadata"]["labels"][objects.POOL_LABEL]
        have_gpus = int(allocatable.get(objects.GPU_RESOURCE, "0"))
        if gpus > have_gpus:
            result.problems.append(f"{name}: {gpus} GPUs placed, {have_gpus} allocatable")
        if cpu > Cpu.parse(allocatable["cpu"]).cores + 1e-9:
            result.problems.append(f"{name}: {cpu} CPU requested, {allocatable['cpu']} allocatable")
        if memory > Memory.parse(allocatable["memory"]).bytes:
            result.problems.append(f"{name}: memory over-committed")
        if have_gpus:
            u, t = result.gpu_use.get(pool, (0, 0))
            result.gpu_use[pool] = (u + gpus, t + have_gpus)
            best = result.busiest.get(pool)
            if best is None or int(best.split(": ")[1].split("/")[0]) < gpus:
                result.busiest[pool] = f"{name}: {gpus}/{have_gpus}"
    return result
