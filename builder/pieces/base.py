"""The contract every piece keeps, and the plain data a piece contributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..facts import RepoFacts
from ..pythons import PythonRequest


@dataclass(frozen=True)
class EnvFile:
    """A file copied into the image before the repository, so that the dependency
    install is cached until this file changes. `install` files are passed to
    `uv pip install -r`."""

    name: str
    content: str
    install: bool = True


@dataclass(frozen=True)
class RepoInstall:
    """An install that needs the whole repository, so it runs after the repo is copied.

    A package of the repository (`editable` or `local`: `-e .`, setup.py, pyproject.toml,
    a Pipfile or environment.yml path) is a *project*: its dependencies are resolved into
    the lock with the rest, and its own code is installed with `--no-deps` on top. A
    `requirements` file that includes other files of the repository is installed as it is."""

    kind: Literal["requirements", "editable", "local"]
    path: str  # relative to the repository root
    extras: tuple[str, ...] = ()  # `-e .[dev]`: the project's optional dependencies asked for

    @property
    def project(self) -> bool:
        return self.kind != "requirements"

    @property
    def target(self) -> str:
        """The project's folder as an install argument (never read as a package name)."""
        where = "./" + self.path if self.path != "." else "."
        return where + (f"[{','.join(self.extras)}]" if self.extras else "")

    @property
    def args(self) -> tuple[str, ...]:
        if self.kind == "local":
            return (self.target,)
        return ("-r", self.path) if self.kind == "requirements" else ("-e", self.target)


@dataclass(frozen=True)
class Contribution:
    """What one piece adds to the build. The plan merges contributions in PIECES order."""

    apt_packages: tuple[str, ...] = ()
    env_files: tuple[EnvFile, ...] = ()
    repo_installs: tuple[RepoInstall, ...] = ()
    post_build: tuple[str, ...] = ()
    start: str | None = None
    python: PythonRequest | None = None  # the Python the file asks for
    dockerfile: str | None = None
    notes: tuple[str, ...] = ()  # lines for the build log


class Piece:
    """One configuration file (or a small family of them).

    `detect` is a cheap look at the facts; `contribute` parses the file and may raise
    a ConfigError that names the file and the problem."""

    name: str = ""

    def detect(self, facts: RepoFacts) -> bool:
        raise NotImplementedError

    def contribute(self, facts: RepoFacts) -> Contribution:
        raise NotImplementedError
