"""The test cluster's simulated hardware and storage, as Kubernetes objects.

Used by start.sh (run as a script, it prints a kubectl-ready List) and imported
by the cluster tests and the scale benchmark, which add nodes and volumes of
their own. Plain dicts only, no dependencies beyond the standard library.

Nodes carry kwok's annotation so the kwok controller (and only it) plays their
kubelet. GPU nodes look like NVIDIA's GPU operator makes them look: allocatable
`nvidia.com/gpu`, `nvidia.com/gpu.*` labels and a NoSchedule taint on the GPU
resource name, so only pods that tolerate it (dsbuild's GPU pods) land there.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

GPU_RESOURCE = "nvidia.com/gpu"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
POOL_LABEL = "dsbuild.io/node-pool"
STORAGE_CLASS = "standard"
PV_POOL_LABEL = "dsbuild.io/pv-pool"
# The real node (node.sh): its volumes are directories on this machine.
REAL_STORAGE_CLASS = "real-local"
REAL_POOL = "real"


@dataclass(frozen=True)
class NodeType:
    pool: str  # the value of the dsbuild.io/node-pool label
    cpu: int
    memory: str
    gpus: int = 0
    gpu_product: str = ""  # nvidia.com/gpu.product, as the GPU operator labels it
    gpu_memory_mib: int = 0
    pods: int = 110


# The catalog in examples/hub/catalog.yaml selects GPU types by these products.
CPU = NodeType("cpu", cpu=16, memory="64Gi")
A100 = NodeType("gpu-a100", cpu=64, memory="512Gi", gpus=8, gpu_product="NVIDIA-A100-SXM4-40GB", gpu_memory_mib=40960)
T4 = NodeType("gpu-t4", cpu=32, memory="128Gi", gpus=4, gpu_product="Tesla-T4", gpu_memory_mib=15360)
NODE_TYPES = {t.pool: t for t in (CPU, A100, T4)}


def node(name: str, kind: NodeType, extra_labels: dict[str, str] | None = None) -> dict:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": f"{kind.pool}-{kind.cpu}c",
        "type": "kwok",
        POOL_LABEL: kind.pool,
        **(extra_labels or {}),
    }
    allocatable = {"cpu": str(kind.cpu), "memory": kind.memory, "pods": str(kind.pods)}
    spec: dict = {}
    if kind.gpus:
        allocatable[GPU_RESOURCE] = str(kind.gpus)
        labels.update({
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": kind.gpu_product,
            "nvidia.com/gpu.count": str(kind.gpus),
            "nvidia.com/gpu.memory": str(kind.gpu_memory_mib),
        })
        spec["taints"] = [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"}},
        "spec": spec,
        "status": {"allocatable": allocatable, "capacity": dict(allocatable)},
    }


def nodes(cpu: int = 4, a100: int = 2, t4: int = 2, prefix: str = "kwok", labels: dict | None = None) -> list[dict]:
    out = [node(f"{prefix}-cpu-{i}", CPU, labels) for i in range(1, cpu + 1)]
    out += [node(f"{prefix}-a100-{i}", A100, labels) for i in range(1, a100 + 1)]
    out += [node(f"{prefix}-t4-{i}", T4, labels) for i in range(1, t4 + 1)]
    return out


def storage_class() -> dict:
    """The default class: static volumes only (no provisioner), bound by
    kube-controller-manager's PV controller as soon as a claim appears."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
    }


def persistent_volume(name: str, size: str, pool: str = "default", access_mode: str = "ReadWriteOnce",
                      storage_class: str = STORAGE_CLASS) -> dict:
    """A static volume. Its hostPath is never mounted: no kubelet runs here."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {PV_POOL_LABEL: pool}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": [access_mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage_class,
            "hostPath": {"path": f"/var/lib/dsbuild-test-volumes/{name}"},
        },
    }


def real_storage_class() -> dict:
    """Local volumes of the real node: bound when a pod that uses the claim is
    scheduled (so the scheduler sees the node they live on), never deleted."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": REAL_STORAGE_CLASS},
        "provisioner": "kubernetes.io/no-provisioner",
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def local_volume(name: str, size: str, path: str, node_name: str) -> dict:
    """A `local` volume: a real directory on `node_name`, which must exist."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {PV_POOL_LABEL: REAL_POOL}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": REAL_STORAGE_CLASS,
            "local": {"path": path},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}]}]}},
        },
    }


def real_volumes(node_name: str, folder: str, count: int) -> list[dict]:
    names = [f"real-10gi-{i:04d}" for i in range(1, count + 1)]
    return [local_volume(n, "10Gi", f"{folder.rstrip('/')}/{n}", node_name) for n in names]


def volumes(count_10gi: int = 16, count_50gi: int = 8, pool: str = "default", prefix: str = "pv") -> list[dict]:
    out = [persistent_volume(f"{prefix}-10gi-{i:04d}", "10Gi", pool) for i in range(1, count_10gi + 1)]
    out += [persistent_volume(f"{prefix}-50gi-{i:04d}", "50Gi", pool) for i in range(1, count_50gi + 1)]
    return out


def as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the test cluster's nodes, StorageClass and "
                                     "volumes as a kubectl List (JSON).")
    parser.add_argument("--cpu-nodes", type=int, default=4)
    parser.add_argument("--a100-nodes", type=int, default=2)
    parser.add_argument("--t4-nodes", type=int, default=2)
    parser.add_argument("--volumes-10gi", type=int, default=16)
    parser.add_argument("--volumes-50gi", type=int, default=8)
    parser.add_argument("--only-real-node", metavar="NAME",
                        help="print only the real node's StorageClass and local volumes")
    parser.add_argument("--real-volume-dir", default="", help="where the real node's volume folders are")
    parser.add_argument("--real-volumes", type=int, default=12)
    args = parser.parse_args(argv)
    if args.only_real_node:
        if not args.real_volume_dir.startswith("/"):
            parser.error("--only-real-node needs an absolute --real-volume-dir")
        items = [real_storage_class(), *real_volumes(args.only_real_node, args.real_volume_dir, args.real_volumes)]
    else:
        items = [storage_class(), *nodes(args.cpu_nodes, args.a100_nodes, args.t4_nodes),
                 *volumes(args.volumes_10gi, args.volumes_50gi)]
    json.dump(as_list(items), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
