"""The test cluster's real node (tests/cluster/node.sh) as the tests see it:
which node, which registry it pulls from, how a spawner targets it on purpose,
and a small repository built the production way (`dsbuild build --registry
--push`) into that registry. Plain helpers; the fixtures are in conftest.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import objects

ROOT = Path(__file__).resolve().parents[2]
NODE_POOL = "real"  # node.sh's NODE_LABEL value, under objects.POOL_LABEL
TAINT_KEY = "dsbuild.io/real-node"  # node.sh's NODE_TAINT_KEY
DATA_CLAIM = "real-datasets"
NOTEBOOK = "notebooks/analysis.ipynb"
DATA_FILE = "README.txt"


def cluster_env(run_dir: Path) -> dict[str, str]:
    try:
        lines = (run_dir / "cluster.env").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split("=", 1) for line in lines if "=" in line)


@dataclass(frozen=True)
class RealNode:
    name: str
    registry: str  # localhost:PORT, plain HTTP

    def spawner_config(self, **config) -> dict:
        """KubeSpawner settings that place a server on the real node (and only there)."""
        return {
            "node_selector": {objects.POOL_LABEL: NODE_POOL},
            "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            "start_timeout": 300,  # a first pull of a JupyterLab image
            **config,
        }


def catalog(image: str) -> dict:
    """A catalog offering `image`, sizes that fit the real node, its local
    storage class and one read-only data volume."""
    return {
        "environments": {"notebooks": {"image": image, "display_name": "Test notebooks"}},
        "cpu": [{"limit": 0.5, "guarantee": 0.25}, {"limit": 1, "guarantee": 0.5}],
        "memory": [{"limit": "1Gi", "guarantee": "512Mi"}, {"limit": "2Gi", "guarantee": "1Gi"}],
        "storage": {"sizes": ["1Gi"], "classes": [objects.REAL_STORAGE_CLASS]},
        "data_volumes": {"datasets": {"mount_path": "/data/datasets", "pvc": DATA_CLAIM}},
    }


def notebook_json(text: str) -> str:
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": kernel, "cells": [
        {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": [text]}]})


def make_repo(folder: Path) -> Path:
    """A git repository with a README and a notebook, nothing to install."""
    (folder / "notebooks").mkdir(parents=True)
    (folder / "README.md").write_text("# Real node test repository\n")
    (folder / NOTEBOOK).write_text(notebook_json("From the repository."))
    git = ["git", "-C", str(folder), "-c", "user.name=dsbuild test", "-c", "user.email=test@dsbuild.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "notebooks"], check=True)
    return folder


def build_and_push(repo: Path, registry: str, image_name: str) -> str:
    """`dsbuild build --registry --push`, as production builds; the image reference."""
    dsbuild = Path(sys.executable).parent / "dsbuild"  # the CLI of this environment
    done = subprocess.run([str(dsbuild), "build", str(repo), "--image-name", image_name,
                           "--registry", registry, "--push", "--quiet"],
                          capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dsbuild build --push failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def data_volume(name: str, folder: Path, node: str) -> dict:
    """A read-only-many local volume on the real node, for a shared data claim."""
    pv = objects.local_volume(name, "1Gi", str(folder), node)
    pv["metadata"]["labels"][objects.PV_POOL_LABEL] = "datasets"
    pv["spec"].update({"accessModes": ["ReadOnlyMany"], "storageClassName": ""})
    return pv
