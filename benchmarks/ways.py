"""The three ways to get the reference repository's environment, each behind `build`.

1. dsbuild: the `dsbuild` CLI, exactly as a user runs it.
2. hand-written: `docker build` of handwritten/Dockerfile (`COPY . .` then `pip install`).
3. the floor: `uv venv` + `uv pip install` of the same packages on the host."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import uv

from dsbuild.builder.host import read_host_settings
from dsbuild.builder.plan import JUPYTER_PACKAGES

from .common import BASE_IMAGE, DOCKER, DSBUILD, Janitor, docker, image_size, timed, tree_bytes

HANDWRITTEN_DOCKERFILE = Path(__file__).resolve().parent / "handwritten" / "Dockerfile"
_DSBUILD_STEP = re.compile(r"^\[(?P<phase>[^\]]+)\] step \d+ done in (?P<seconds>[\d.]+)s$")
_DSBUILD_UV = re.compile(r"^(?P<phase>[^|]+?) \| (?P<what>Resolved|Prepared|Installed|Bytecode compiled|Uninstalled) "
                         r"[\d,]+ \w+ in (?:(?P<minutes>\d+)m ?)?(?P<value>[\d.]+)(?P<unit>ms|s)$")
_BK_STEP = re.compile(r"^#(?P<vertex>\d+) \[(?:[^\]]*? )?(?P<step>\d+/\d+)\] (?P<what>.*)$")
_BK_DONE = re.compile(r"^#(?P<vertex>\d+) DONE (?P<seconds>[\d.]+)s$")
_BK_EXPORT = re.compile(r"^#(?P<vertex>\d+) exporting to image$")


@dataclass(frozen=True)
class Result:
    seconds: float
    image: str | None = None
    detail: dict = field(default_factory=dict)


def ca_bundle() -> Path:
    bundle = read_host_settings().ca_bundle
    if bundle is None:
        raise SystemExit("no CA bundle found on the host (SSL_CERT_FILE or /etc/ssl/certs/ca-certificates.crt)")
    return bundle


def dsbuild_phases(progress: str) -> dict[str, float]:
    """Seconds per dsbuild phase, from the CLI's progress lines (steps of 1 s or more)."""
    phases: dict[str, float] = {}
    for line in progress.splitlines():
        if match := _DSBUILD_STEP.match(line.strip()):
            phases[match["phase"]] = round(phases.get(match["phase"], 0.0) + float(match["seconds"]), 2)
    return phases


def dsbuild_uv(progress: str) -> dict[str, dict[str, float]]:
    """uv's own timings per dsbuild phase (resolve, download, install, bytecode), from the
    build's log lines, e.g. `  jupyter | Bytecode compiled 9120 files in 2.71s`."""
    found: dict[str, dict[str, float]] = {}
    for line in progress.splitlines():
        if match := _DSBUILD_UV.match(line.strip()):
            seconds = float(match["value"]) / (1000 if match["unit"] == "ms" else 1) + 60 * int(match["minutes"] or 0)
            what = found.setdefault(match["phase"].strip(), {})
            what[match["what"]] = round(what.get(match["what"], 0.0) + seconds, 2)
    return found


def buildkit_steps(progress: str) -> dict[str, float]:
    """Seconds per Dockerfile step (and the image export) from `--progress=plain` output."""
    names: dict[str, str] = {}
    steps: dict[str, float] = {}
    for line in progress.splitlines():
        if match := _BK_STEP.match(line):
            names[match["vertex"]] = f"{match['step']} {match['what'][:60]}"
        elif match := _BK_EXPORT.match(line):
            names[match["vertex"]] = "export"
        elif (match := _BK_DONE.match(line)) and match["vertex"] in names:
            steps[names[match["vertex"]]] = float(match["seconds"])
    return steps


class Dsbuild:
    """dsbuild through its CLI. A build "scope" is an alias tag of the base image: dsbuild
    names its package-cache mount after the base image's name, so a new alias is a new,
    empty cache mount; together with --no-cache that makes a build truly cold."""

    name = "dsbuild"

    def __init__(self, janitor: Janitor, work: Path, nonce: str):
        self.janitor = janitor
        self.work = work
        self.image_name = f"dsbench-{nonce}-dsbuild"
        self.minimal_name = f"dsbench-{nonce}-dsbuild-min"
        self.cached_name = f"dsbench-{nonce}-dsbuild-cached"  # the reference again, from the layer cache
        self.base_repo = f"dsbench-{nonce}-base"
        janitor.image_names += [self.image_name, self.minimal_name, self.cached_name]

    def new_scope(self, label: str) -> tuple[str, Path]:
        alias = f"{self.base_repo}:{label}"
        docker("tag", BASE_IMAGE, alias)
        self.janitor.aliases.append(alias)
        return alias, self.work / f"dsbuild-cache-{label}"

    def build(self, repo: Path, scope: tuple[str, Path], cold: bool = False, name: str | None = None) -> Result:
        alias, cache_dir = scope
        args = [DSBUILD, "build", str(repo), "--base-image", alias, "--image-name", name or self.image_name]
        if cold:
            args += ["--no-cache", "--force"]
        run = timed(args, env={"DSBUILD_CACHE_DIR": str(cache_dir)})
        image = run.stdout.strip().splitlines()[-1]
        phases = dsbuild_phases(run.stderr)
        ran = re.search(r"\((\d+) steps run, (\d+) cached\)", run.stderr)
        detail = {"phases": phases, "uv": dsbuild_uv(run.stderr), "steps_run": int(ran.group(1)) if ran else None,
                  "layer_added_without_build": "without a build" in run.stderr}
        return Result(run.seconds, image, detail)


class HandWritten:
    name = "handwritten"

    def __init__(self, janitor: Janitor, nonce: str):
        self.image_name = f"dsbench-{nonce}-hand"
        self.ca = ca_bundle()
        janitor.image_names.append(self.image_name)

    def build(self, repo: Path, tag: str, cold: bool = False) -> Result:
        image = f"{self.image_name}:{tag}"
        args = [DOCKER, "build", "--progress=plain", "--secret", f"id=ca,src={self.ca}",
                "-f", str(HANDWRITTEN_DOCKERFILE), "-t", image]
        if cold:
            args.append("--no-cache")
        run = timed(args + [str(repo)])
        return Result(run.seconds, image, {"steps": buildkit_steps(run.stderr)})


class Floor:
    """`uv pip install` into a fresh virtual environment on the host: no image, no layers,
    uv's defaults (hard links from its cache, no bytecode compilation)."""

    name = "floor"

    def __init__(self, work: Path):
        self.work = work
        self.uv = uv.find_uv_bin()
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") and k != "VIRTUAL_ENV"}
        env["SSL_CERT_FILE"] = str(ca_bundle())
        self.env = env
        # The interpreter dsbuild's base image has (3.11), from the host, not from a project venv.
        self.python = timed([self.uv, "python", "find", "--system", "3.11"], env=self.env, cwd=work).stdout.strip()

    def _uv(self, cache: Path, *args: str) -> float:
        return timed([self.uv, *args], env={**self.env, "UV_CACHE_DIR": str(cache)}, cwd=self.work).seconds

    def install(self, requirements: Path, venv: Path, cache: Path) -> Result:
        """A new venv with the requirements and JupyterLab: what dsbuild installs."""
        if venv.exists():
            shutil.rmtree(venv)
        seconds = self._uv(cache, "venv", "--quiet", "--python", self.python, str(venv))
        seconds += self._uv(cache, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                            "-r", str(requirements), *JUPYTER_PACKAGES)
        return Result(seconds, None, {"venv_bytes": tree_bytes(venv), "python": self.python})

    def add(self, requirements: Path, venv: Path, cache: Path) -> Result:
        """The same install into an existing venv: only what is new gets installed."""
        seconds = self._uv(cache, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                           "-r", str(requirements), *JUPYTER_PACKAGES)
        return Result(seconds)


def floor_image_bytes(venv_bytes: int) -> int:
    """The floor for image size: the base image plus the host venv's files."""
    return image_size(BASE_IMAGE) + venv_bytes
