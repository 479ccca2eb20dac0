"""kubectl (the one built with the cluster) with the admin kubeconfig, for the
tests' setup and checks: the cluster's own view, independent of the spawner's
API client."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from . import objects


class KubectlError(RuntimeError):
    pass


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path):
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 180) -> str:
        done = subprocess.run([str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def apply(self, *manifests: dict) -> None:
        self("apply", "-f", "-", input=json.dumps(objects.as_list(list(manifests))))

    def get(self, kind: str, name: str | None = None, namespace: str | None = None, selector: str | None = None):
        """The object as a dict, or None if it does not exist; a list's items without a name."""
        args = ["get", kind, "-o", "json"]
        if name:
            args.insert(2, name)
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        done = subprocess.run([str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise KubectlError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        data = json.loads(done.stdout)
        return data if name else data["items"]

    def wait_for(self, check, what: str, timeout: float = 60, interval: float = 0.3):
        """Poll `check()` until it returns something truthy; return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what} after {timeout}s")
            time.sleep(interval)

    def recycle_volumes(self, namespace: str) -> list[str]:
        """Volumes bound to claims of `namespace` (Released once it is gone, as
        their reclaim policy is Retain) are deleted and made anew, unbound."""
        recycled = []
        for pv in self.get("pv") or []:
            claim = pv["spec"].get("claimRef") or {}
            pool = (pv["metadata"].get("labels") or {}).get(objects.PV_POOL_LABEL)
            if claim.get("namespace") != namespace or pool in (None, "datasets"):
                continue
            name = pv["metadata"]["name"]
            self("delete", "pv", name, "--wait=true", "--timeout=60s")
            if "local" in pv["spec"]:  # a real directory: emptied, then offered again
                _empty_folder(Path(pv["spec"]["local"]["path"]))
                spec = {k: v for k, v in pv["spec"].items() if k != "claimRef"}
                fresh = {"apiVersion": "v1", "kind": "PersistentVolume", "spec": spec,
                         "metadata": {"name": name, "labels": pv["metadata"].get("labels") or {}}}
            else:
                fresh = objects.persistent_volume(name, pv["spec"]["capacity"]["storage"], pool,
                                                  pv["spec"]["accessModes"][0], pv["spec"].get("storageClassName", ""))
            self.apply(fresh)
            recycled.append(name)
        return recycled


def _empty_folder(folder: Path) -> None:
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
