"""What every scenario needs: timed commands, the docker CLI, the machine's facts,
and the janitor that removes everything the benchmark made."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from dsbuild.builder.engine import find_docker_cli
from dsbuild.builder.render import dsbuild_version

DOCKER = find_docker_cli()  # the CLI dsbuild itself uses (BuildKit without buildx)
BASE_IMAGE = "dsbuild-base:bookworm"
BIN = Path(sys.executable).parent
DSBUILD = str(BIN / "dsbuild")


class CommandFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Timed:
    seconds: float
    stdout: str
    stderr: str


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(args: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 1800) -> Timed:
    """Run a command to completion; the time is `time.perf_counter` around the whole of it."""
    full_env = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_CLI_HINTS": "false", **(env or {})}
    start = time.perf_counter()
    done = subprocess.run(list(args), env=full_env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise CommandFailed(f"{' '.join(args[:4])} ... failed ({done.returncode}):\n{tail}")
    return Timed(seconds, done.stdout, done.stderr)


def docker(*args: str, check: bool = True, timeout: float = 600) -> str:
    done = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if check and done.returncode != 0:
        raise CommandFailed(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()[-400:]}")
    return done.stdout.strip()


def image_size(ref: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", ref))


def tree_bytes(root: Path) -> int:
    """Bytes of the files under root, each inode once (what a layer holding them stores)."""
    seen: set[int] = set()
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def _meminfo() -> int:
    text = Path("/proc/meminfo").read_text()
    match = re.search(r"MemTotal:\s+(\d+) kB", text)
    return int(match.group(1)) * 1024 if match else 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict:
    import uv

    uv_version = subprocess.run([uv.find_uv_bin(), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _meminfo(),
        "kernel": platform.release(),
        "docker_server": docker("version", "--format", "{{.Server.Version}}"),
        "docker_client": docker("version", "--format", "{{.Client.Version}}"),
        "storage_driver": docker("info", "--format", "{{.Driver}}"),
        "dsbuild": dsbuild_version(),
        "uv": uv_version,
        "python": platform.python_version(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def build_cache_records() -> list[dict]:
    out = docker("system", "df", "-v", "--format", "{{json .BuildCache}}", timeout=300)
    return json.loads(out or "[]") or []


def _size_bytes(text: str) -> float:
    match = re.match(r"^([\d.]+)\s*([kMGT]?B)$", text.strip())
    if not match:
        return 0.0
    factor = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[match.group(2)]
    return float(match.group(1)) * factor


def build_cache_bytes(records: list[dict] | None = None) -> int:
    return int(sum(_size_bytes(r.get("Size", "0B")) for r in (records if records is not None else build_cache_records())))


@dataclass
class Janitor:
    """Removes the containers, images and BuildKit cache records that this run created.

    BuildKit records are identified by id: those that did not exist when the run began.
    (A build by someone else during the run may lose records it made in that window;
    that only costs it a cache miss. Records in use are never pruned.)"""

    image_names: list[str] = field(default_factory=list)  # repositories owned by this run
    aliases: list[str] = field(default_factory=list)  # extra tags of the base image (untagged only)
    image_ids: list[str] = field(default_factory=list)  # images built by this run, tagged or not
    containers: list[str] = field(default_factory=list)
    cache_before: set[str] | None = None

    def remove_container(self, container: str) -> None:
        docker("rm", "--force", container, check=False)
        if container in self.containers:
            self.containers.remove(container)

    def remove_images(self) -> None:
        for container in list(self.containers):
            self.remove_container(container)
        for name in self.image_names:
            ids = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={name}", check=False)
            for ref in ids.splitlines():
                self.remove_image(ref)
        for image_id in self.image_ids:
            self.remove_image(image_id)
        for alias in self.aliases:
            docker("image", "rm", alias, check=False)  # no --force: this only untags the base image

    def snapshot(self) -> set[str]:
        return {r["ID"] for r in build_cache_records()}

    def prune_new(self, since: set[str] | None) -> int:
        """Prune the BuildKit records made after the `since` snapshot (and not in use);
        returns how many went. Children go first: a record with children is kept until
        they are gone, hence the passes."""
        if since is None:
            return 0
        removed = 0
        for _ in range(8):
            new = [r for r in build_cache_records() if r["ID"] not in since and r.get("InUse") != "true"]
            if not new:
                break
            progress = 0
            for record in new:
                out = docker("builder", "prune", "--all", "--force", "--filter", f"id={record['ID']}", check=False)
                progress += "Deleted build cache objects" in out
            removed += progress
            if progress == 0:
                break
        return removed

    def remove_image(self, ref: str) -> None:
        for container in docker("ps", "-aq", "--filter", f"ancestor={ref}", check=False).splitlines():
            docker("rm", "--force", container, check=False)
        docker("image", "rm", "--force", ref, check=False)

    def cleanup(self) -> None:
        log("cleaning up: containers, images, base aliases, BuildKit cache records of this run")
        self.remove_images()
        self.prune_new(self.cache_before)
