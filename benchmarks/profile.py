"""Where dsbuild's time and bytes go.

- build: `docker build --progress=plain --no-cache` of the context and Dockerfile that
  dsbuild staged (the same bytes dsbuild sends), for BuildKit's own timings: context
  upload, each step, uv's resolve / install / bytecode lines, and the layer export.
- bytes: layer sizes by instruction, and a look inside the image (bytecode, tests,
  shared data, the largest packages).
- startup_imports: `python -X importtime` of JupyterLab's server inside the image."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from .common import DOCKER, DSBUILD, docker, timed

_VERTEX_NAME = re.compile(r"^#(\d+) (\[.*|exporting to image|\[internal\] load build context)$")
_DONE = re.compile(r"^#(\d+) DONE ([\d.]+)s$")
_CONTEXT = re.compile(r"^#(\d+) transferring context: ([\d.]+[kMG]?B)(?: ([\d.]+)s)?")
_EXPORT = re.compile(r"^#\d+ exporting layers ([\d.]+)s done")
_TRIM = re.compile(r"^#(\d+) [\d.]+ dsbuild-trim: removed (\d+) test folders, (\d+) bytes")
_UV = re.compile(r"^#(\d+) [\d.]+ (Resolved \d+ packages|Prepared \d+ packages?|Installed \d+ packages?|Bytecode compiled \d+ files|Uninstalled \d+ packages?) in ([\d.]+)(ms|s)$")


def parse_build(progress: str) -> dict:
    """BuildKit's plain progress -> {steps: {name: s}, uv: {step: {what: s}}, context, export}."""
    names: dict[str, str] = {}
    steps: dict[str, float] = {}
    uv: dict[str, dict[str, float]] = {}
    result: dict = {"context": None, "export_seconds": None}
    for line in progress.splitlines():
        if match := _VERTEX_NAME.match(line):
            names.setdefault(match.group(1), match.group(2)[:90])
        elif match := _DONE.match(line):
            if match.group(1) in names:
                steps[names[match.group(1)]] = float(match.group(2))
        elif (match := _CONTEXT.match(line)) and names.get(match.group(1)) == "[internal] load build context":
            result["context"] = {"size": match.group(2), "seconds": float(match.group(3) or 0)}
        elif match := _EXPORT.match(line):
            result["export_seconds"] = float(match.group(1))
        elif match := _TRIM.match(line):
            step = names.get(match.group(1), match.group(1))[:40]
            trims = result.setdefault("trim", {})
            trims[step] = trims.get(step, 0) + int(match.group(3))
        elif match := _UV.match(line):
            seconds = float(match.group(3)) / (1000 if match.group(4) == "ms" else 1)
            step = names.get(match.group(1), match.group(1))[:40]
            uv.setdefault(step, {})[match.group(2)] = round(seconds, 2)
    result["steps"] = steps
    result["uv"] = uv
    return result


def build_profile(context: Path, tag: str, work: Path) -> dict:
    """A copy of the staged context in a new folder, so that BuildKit uploads all of it
    (as in a cold build); the package cache is warm."""
    copy = work / "profile-context"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(context, copy, symlinks=True, ignore=shutil.ignore_patterns(".lock"))
    # The per-step limits wait for dsbuild's engine to apply them (limits.CgroupLimiter); a plain
    # `docker build` cannot, so the profile times the steps without that handshake.
    dockerfile = copy / ".dsbuild" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("/tmp/dsbuild/bin/limits.sh && ", ""))
    secret = work / "profile-index-secret"  # the package index settings dsbuild passes (builder/host.py)
    from dsbuild.builder.host import INDEX_SECRET, index_secret, read_host_settings

    secret.write_text(index_secret(read_host_settings()))
    secret.chmod(0o600)
    try:
        run = timed([DOCKER, "build", "--progress=plain", "--no-cache", "--secret", f"id={INDEX_SECRET},src={secret}",
                     "-f", str(copy / ".dsbuild" / "Dockerfile"), "-t", tag, str(copy)])
    finally:
        shutil.rmtree(copy, ignore_errors=True)
        secret.unlink(missing_ok=True)
    return {"total_seconds": round(run.seconds, 2), **parse_build(run.stderr)}


def _request(repo: Path, base_alias: str, name: str):
    from dsbuild.builder.host import read_host_settings
    from dsbuild.builder.plan import BuildOptions
    from dsbuild.builder.service import BuildRequest
    from dsbuild.builder.source import parse_source

    return BuildRequest(source=parse_source(str(repo)), options=BuildOptions(base_image=base_alias),
                        host=read_host_settings(), name=name)


def build_timeline(repo: Path, base_alias: str, name: str, cache_dir: Path) -> dict:
    """`dsbuild.builder.service.build` in-process, with the time of each milestone: what a
    rebuild spends before, inside and after `docker build`."""
    from dsbuild.builder.engine import DockerEngine
    from dsbuild.builder.progress import BuildFinished, StepStarted
    from dsbuild.builder.service import Built, Status, build

    old = os.environ.get("DSBUILD_CACHE_DIR")
    os.environ["DSBUILD_CACHE_DIR"] = str(cache_dir)
    marks: dict[str, float] = {}
    image = None
    try:
        start = time.perf_counter()
        for event in build(_request(repo, base_alias, name), DockerEngine()):
            now = round(time.perf_counter() - start, 3)
            if isinstance(event, Status):
                marks.setdefault(f"status {event.phase}", now)
            elif isinstance(event, StepStarted):
                marks.setdefault("first step started", now)
            elif isinstance(event, BuildFinished):
                marks["docker build finished"] = now
            elif isinstance(event, Built):
                marks["tagged"] = now
                image = event.image
    finally:
        if old is None:
            os.environ.pop("DSBUILD_CACHE_DIR", None)
        else:
            os.environ["DSBUILD_CACHE_DIR"] = old
    return {"marks": marks, "image": image}


def start_breakdown(repo: Path, base_alias: str, name: str, cache_dir: Path) -> dict:
    """What `dsbuild run --detach` spends, piece by piece, through dsbuild's own functions:
    the check that the image exists, `docker run`, and waiting for JupyterLab's API."""
    from dsbuild.builder.engine import DockerEngine
    from dsbuild.builder.run import RunOptions, docker_run_args, free_port, wait_ready

    timeline = build_timeline(repo, base_alias, name, cache_dir)
    engine = DockerEngine()
    options = RunOptions()
    port = free_port()
    start = time.perf_counter()
    container = engine.run_detached(docker_run_args(timeline["image"], options, port), env={"JUPYTER_TOKEN": options.token})
    started = time.perf_counter()
    try:
        wait_ready(engine, container, f"http://127.0.0.1:{port}", options.token, 120)
        ready = time.perf_counter()
    finally:
        engine.remove_container(container)
    cli = timed([DSBUILD, "--help"]).seconds
    return {
        "cli_start_seconds": round(cli, 3),
        "image_check_seconds": timeline["marks"].get("tagged"),
        "docker_run_seconds": round(started - start, 3),
        "wait_ready_seconds": round(ready - started, 3),
    }


_INSIDE = r"""
import json, os, sys
venv = "/srv/dsbuild/venv"
site = f"{venv}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
def size(path):
    total, seen = 0, set()
    for folder, dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino); total += st.st_size
    return total
def matching(root, test):
    total = 0
    for folder, dirs, files in os.walk(root):
        for d in list(dirs):
            if test(d):
                total += size(os.path.join(folder, d)); dirs.remove(d)
    return total
so = 0
for folder, dirs, files in os.walk(site):
    so += sum(os.lstat(os.path.join(folder, f)).st_size for f in files if ".so" in f)
entries = sorted(((size(os.path.join(site, e)) if os.path.isdir(os.path.join(site, e)) else os.lstat(os.path.join(site, e)).st_size, e) for e in os.listdir(site)), reverse=True)
print(json.dumps({
    "venv": size(venv),
    "bytecode": matching(venv, lambda d: d == "__pycache__"),
    "tests": matching(site, lambda d: d in ("tests", "test")),
    "shared_objects": so,
    "share_jupyterhub": size(f"{venv}/share/jupyterhub"),
    "share_jupyter": size(f"{venv}/share/jupyter"),
    "largest": [[e, s] for s, e in entries[:15]],
}))
"""


def bytes_profile(image: str) -> dict:
    history = []
    out = docker("history", "--no-trunc", "--format", "{{json .}}", image)
    for line in out.splitlines():
        item = json.loads(line)
        history.append({"size": item.get("Size"), "created_by": item.get("CreatedBy", "")[:120]})
    inside = docker("run", "--rm", "--network=none", "--entrypoint", "python3", image, "-c", _INSIDE, timeout=300)
    return {"layers": history, "inside": json.loads(inside)}


def import_profile(image: str) -> dict:
    """Cumulative import time of `jupyterlab.labapp` and the slowest modules (own time)."""
    done = subprocess.run([DOCKER, "run", "--rm", "--network=none", "--entrypoint", "python", image,
                           "-X", "importtime", "-c", "import jupyterlab.labapp"], capture_output=True, text=True, timeout=300)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$", line)
        if match:
            rows.append((int(match.group(1)), int(match.group(2)), len(match.group(3)), match.group(4)))
    total = sum(cumulative for _, cumulative, indent, _ in rows if indent <= 1)
    slowest = sorted(rows, reverse=True)[:8]
    return {"total_seconds": round(total / 1e6, 3), "slowest_self": [[name, round(own / 1e6, 3)] for own, _, _, name in slowest]}
