"""`plan(facts, base, options) -> BuildPlan`: which pieces apply and what they add.

The composition is all here, in PIECES order. Pure: no files, no engine."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from .errors import ConfigError
from .facts import RepoFacts
from .pieces.base import Contribution, EnvFile, Piece, RepoInstall
from .pieces.dockerfile import DockerfilePiece
from .pieces.python import PipfilePiece, RequirementsPiece, RuntimePiece, SetupPiece
from .pieces.scripts import PostBuildPiece, StartPiece
from .pieces.system import AptPiece
from .pieces.unsupported import UNSUPPORTED

# The repository's own Dockerfile wins outright (as on mybinder.org); then files whose
# sources are out of reach stop the build; then the Python stack, in layer order.
PIECES: tuple[Piece, ...] = (
    DockerfilePiece(),
    *UNSUPPORTED,
    RuntimePiece(),
    AptPiece(),
    PipfilePiece(),
    RequirementsPiece(),
    SetupPiece(),
    PostBuildPiece(),
    StartPiece(),
)

# Installed into every image, so it runs alone (JupyterLab) and under JupyterHub
# (jupyterhub-singleuser). Pinned: the layer that installs them is shared by every repo.
JUPYTER_PACKAGES = ("jupyterlab==4.6.6", "jupyterhub==5.5.4")
DEFAULT_BASE_IMAGE = "dsbuild-base:bookworm"


@dataclass(frozen=True)
class PythonInstall:
    version: str  # "3.11"
    path: str  # "/usr/bin/python3.11"


@dataclass(frozen=True)
class BaseFacts:
    """What the base image offers, read from its labels or by looking inside it once."""

    image: str
    pythons: tuple[PythonInstall, ...] = ()
    default_python: str | None = None  # the version `python3` runs

    def python(self, version: str | None) -> PythonInstall:
        wanted = version or self.default_python
        for install in self.pythons:
            if install.version == wanted:
                return install
        have = ", ".join(p.version for p in self.pythons) or "none"
        if version is None:
            raise ConfigError(f"the base image {self.image} has no python3 (found: {have}); pick another --base-image")
        raise ConfigError(
            f"Python {version} was asked for, but the base image {self.image} has Python {have}; "
            f"change runtime.txt or use --base-image with an image that has python{version}"
        )


@dataclass(frozen=True)
class BuildOptions:
    base_image: str = DEFAULT_BASE_IMAGE
    jupyter_packages: tuple[str, ...] = JUPYTER_PACKAGES


@dataclass(frozen=True)
class BuildPlan:
    base_image: str
    pieces: tuple[str, ...]
    python: PythonInstall | None = None
    apt_packages: tuple[str, ...] = ()
    env_files: tuple[EnvFile, ...] = ()
    repo_installs: tuple[RepoInstall, ...] = ()
    post_build: tuple[str, ...] = ()
    start: str | None = None
    jupyter_packages: tuple[str, ...] = JUPYTER_PACKAGES
    dockerfile: str | None = None  # the repository's own Dockerfile, built as it is
    notes: tuple[str, ...] = field(default=())

    @property
    def environment_hash(self) -> str:
        """Names the environment (not the code): base, Python, packages and environment files."""
        data = {
            "base": self.base_image,
            "python": self.python.version if self.python else None,
            "apt": sorted(self.apt_packages),
            "env": {f.name: f.content.replace("\r\n", "\n").strip() for f in self.env_files},
            "jupyter": list(self.jupyter_packages),
            "dockerfile": self.dockerfile,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def detected(facts: RepoFacts) -> tuple[Piece, ...]:
    return tuple(piece for piece in PIECES if piece.detect(facts))


def plan(facts: RepoFacts, base: BaseFacts, options: BuildOptions = BuildOptions()) -> BuildPlan:
    pieces = detected(facts)
    if pieces and isinstance(pieces[0], DockerfilePiece):
        own = pieces[0].contribute(facts)
        ignored = tuple(p.name for p in pieces[1:])
        notes = (f"the repository's Dockerfile is built as it is; ignored: {', '.join(ignored)}",) if ignored else ()
        return BuildPlan(base_image=options.base_image, pieces=(pieces[0].name,), dockerfile=own.dockerfile, notes=notes)
    parts = [piece.contribute(facts) for piece in pieces]
    merged = _merge(parts)
    notes = () if pieces else ("no configuration files found: JupyterLab only, with the repository copied in",)
    return BuildPlan(
        base_image=options.base_image,
        pieces=tuple(p.name for p in pieces),
        python=base.python(merged.python_version),
        apt_packages=merged.apt_packages,
        env_files=merged.env_files,
        repo_installs=merged.repo_installs,
        post_build=merged.post_build,
        start=merged.start,
        jupyter_packages=options.jupyter_packages,
        notes=notes,
    )


def _merge(parts: list[Contribution]) -> Contribution:
    apt: list[str] = []
    for part in parts:
        apt.extend(p for p in part.apt_packages if p not in apt)
    return Contribution(
        apt_packages=tuple(apt),
        env_files=tuple(f for part in parts for f in part.env_files),
        repo_installs=tuple(r for part in parts for r in part.repo_installs),
        post_build=tuple(s for part in parts for s in part.post_build),
        start=next((part.start for part in parts if part.start), None),
        python_version=next((part.python_version for part in parts if part.python_version), None),
    )
