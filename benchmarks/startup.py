"""Start-to-ready: from the command until JupyterLab's API answers."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from dsbuild.builder.engine import DockerEngine
from dsbuild.builder.errors import RunFailed
from dsbuild.builder.names import RUN_LABEL
from dsbuild.builder.run import free_port, wait_ready

from .common import BASE_IMAGE, DOCKER, DSBUILD, CommandFailed, Janitor, docker, timed

_CONTAINER = re.compile(r"container ([0-9a-f]{12}) is running")


def wait_for_api(port: int, token: str, container: str, timeout: float = 120) -> None:
    """The same readiness check `dsbuild run` uses, so both ways are timed alike."""
    try:
        wait_ready(DockerEngine(DOCKER), container, f"http://127.0.0.1:{port}", token, timeout)
    except RunFailed as err:
        raise CommandFailed(f"container {container[:12]}: {err}") from None


def dsbuild_run(janitor: Janitor, repo: Path, base_alias: str, image: str, cache_dir: Path) -> float:
    """`dsbuild run --detach` on a repository whose image is built: dsbuild returns once
    JupyterLab answers, so the command's duration is start-to-ready."""
    args = [DSBUILD, "run", str(repo), "--detach", "--quiet", "--base-image", base_alias, "--image-name", image.split(":")[0]]
    run = timed(args, env={"DSBUILD_CACHE_DIR": str(cache_dir)})
    match = _CONTAINER.search(run.stderr)
    container = match.group(1) if match else None
    if container is None:  # dsbuild run labels its containers; ours is the one from our image
        found = docker("ps", "-q", "--filter", f"label={RUN_LABEL}=1", "--filter", f"ancestor={image}", check=False)
        container = found.splitlines()[0] if found else None
    if container:
        janitor.remove_container(container)
    return run.seconds


def docker_run(janitor: Janitor, image: str) -> float:
    """`docker run --detach` with a published port, then poll the API: what people do
    with an image built from a hand-written Dockerfile."""
    port, token = free_port(), secrets.token_hex(16)
    start = time.perf_counter()
    container = docker("run", "--detach", "--init", "--publish", f"127.0.0.1:{port}:8888",
                       "--env", f"JUPYTER_TOKEN={token}", image)
    janitor.containers.append(container)
    try:
        wait_for_api(port, token, container)
        return time.perf_counter() - start
    finally:
        janitor.remove_container(container)


def trivial_container() -> float:
    """The floor: create, start and remove a container that does nothing."""
    return timed([DOCKER, "run", "--rm", BASE_IMAGE, "true"]).seconds
