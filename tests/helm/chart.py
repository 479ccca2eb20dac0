"""The chart and the helm binary, for the chart's tests: `helm` built (or reused) by
deploy/helm/build.sh from its Go module; rendering with values given as plain data."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "dsbuild"
BUILD = ROOT / "deploy" / "helm" / "build.sh"


class HelmFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path  # helm's own config, cache and data folders (none of the user's)
    kubeconfig: Path | None = None

    def env(self) -> dict[str, str]:
        env = {**os.environ, "HELM_CONFIG_HOME": str(self.home / "config"), "HELM_CACHE_HOME": str(self.home / "cache"),
               "HELM_DATA_HOME": str(self.home / "data")}
        if self.kubeconfig:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def __call__(self, *args: str, values: dict | None = None, check: bool = True, timeout: float = 300) -> str:
        argv = [str(self.binary), *args]
        if values is not None:
            argv += ["--values", "-"]
        done = subprocess.run(argv, input=json.dumps(values) if values is not None else None, capture_output=True,
                              text=True, env=self.env(), timeout=timeout)
        if check and done.returncode != 0:
            raise HelmFailed(f"helm {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout if check else done.stdout + done.stderr

    def with_kubeconfig(self, kubeconfig: Path) -> "Helm":
        return Helm(self.binary, self.home, kubeconfig)

    def template(self, values: dict | None = None, release: str = "t", namespace: str = "hub") -> list[dict]:
        """The chart's objects for `values` (helm template), as dicts."""
        text = self("template", release, str(CHART), "--namespace", namespace, values=values or {})
        return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[dict], kind: str, name_end: str = "") -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_end)]
    assert len(found) == 1, f"{kind} *{name_end}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def build_helm() -> Path:
    """deploy/helm/build.sh: the cached helm, built on first use (a few minutes)."""
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise HelmFailed(f"deploy/helm/build.sh exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return Path(done.stdout.strip().splitlines()[-1])
