"""Who the simulated users are, what they ask for, and the cluster sized for them.

A fixed-seed mix: most users take a CPU choice; some ask for A100 or T4 GPUs.
GPU nodes are provisioned for only part of the GPU demand on purpose, so the
run also shows that the scheduler never over-commits a GPU: the requests that
do not fit fail with the scheduler's reason instead of landing anyway.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tests.cluster import objects

CPU_CHOICES = [  # (cpu, memory) from examples/hub/catalog.yaml
    ("0.5", "2Gi"), ("1", "2Gi"), ("1", "4Gi"), ("2", "4Gi"), ("2", "8Gi"),
]
GUARANTEE = {"0.5": 0.25, "1": 0.5, "2": 1.0, "4": 2.0, "8": 4.0}  # cpu requests per limit


@dataclass(frozen=True)
class User:
    name: str
    options: dict

    @property
    def gpu_type(self) -> str | None:
        return self.options.get("gpu_type")

    @property
    def gpus(self) -> int:
        return int(self.options.get("gpus", 0))


def users(count: int, gpu_share: float = 0.1, seed: int = 5) -> list[User]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        roll = rng.random()
        if roll < gpu_share / 2:
            options = {"environment": "dsbuild-torch:2.3", "gpu_type": "nvidia-a100", "gpus": rng.choice([1, 2])}
        elif roll < gpu_share:
            options = {"environment": "dsbuild-torch:2.3", "gpu_type": "nvidia-t4", "gpus": 1}
        else:
            cpu, memory = rng.choice(CPU_CHOICES)
            options = {"cpu": cpu, "memory": memory}
        out.append(User(f"user{i:05d}", options))
    return out


@dataclass(frozen=True)
class Shape:
    cpu_nodes: int
    a100_nodes: int
    t4_nodes: int
    gpu_demand: dict[str, int]  # GPUs asked for, by GPU type
    gpu_supply: dict[str, int]


def shape_for(population: list[User], gpu_capacity: float = 0.8) -> Shape:
    """CPU nodes for every CPU user with headroom; GPU nodes for `gpu_capacity`
    of the GPU demand (at least one node of each type)."""
    cpu_requests = sum(GUARANTEE[u.options.get("cpu", "1")] for u in population if not u.gpus)
    cpu_pods = sum(1 for u in population if not u.gpus)
    cpu_nodes = max(math.ceil(cpu_requests * 1.25 / objects.CPU.cpu),
                    math.ceil(cpu_pods * 1.25 / objects.CPU.pods), 1)
    demand = {"nvidia-a100": 0, "nvidia-t4": 0}
    for u in population:
        if u.gpus:
            demand[u.gpu_type] += u.gpus
    a100 = max(1, math.floor(demand["nvidia-a100"] * gpu_capacity / objects.A100.gpus))
    t4 = max(1, math.floor(demand["nvidia-t4"] * gpu_capacity / objects.T4.gpus))
    return Shape(cpu_nodes, a100, t4, demand,
                 {"nvidia-a100": a100 * objects.A100.gpus, "nvidia-t4": t4 * objects.T4.gpus})
