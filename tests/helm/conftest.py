"""Fixtures of the chart's tests: the helm binary, and a control plane of the test
cluster without the real node (no lock needed; `kubectl apply --dry-run=server`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .chart import Helm, HelmFailed, build_helm

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this fails)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> Helm:
    try:
        binary = build_helm()
    except (HelmFailed, OSError, subprocess.TimeoutExpired) as err:
        _unavailable(f"helm could not be built: {err}")
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """The test cluster's control plane and kwok nodes, in a folder of its own
    (.run/cluster-helm), without the real node; stopped after. Yields (kubectl, kubeconfig)."""
    run_dir = ROOT / ".run" / "cluster-helm"
    env = {**os.environ, "DSBUILD_CLUSTER_DIR": str(run_dir)}
    start = ROOT / "tests" / "cluster" / "start.sh"
    done = subprocess.run([str(start), "--no-node"], capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        subprocess.run([str(ROOT / "tests" / "cluster" / "stop.sh")], env=env, capture_output=True, check=False)
        _unavailable(f"tests/cluster/start.sh --no-node exited {done.returncode}: {done.stderr.strip()[-300:]}")
    kubeconfig = Path(done.stdout.strip().splitlines()[-1])
    kubectl = Path((run_dir / "bin").read_text().strip()) / "kubectl"
    try:
        yield kubectl, kubeconfig
    finally:
        subprocess.run([str(ROOT / "tests" / "cluster" / "stop.sh")], env=env, capture_output=True, check=False)
