"""`scan(path) -> RepoFacts`: the only place the builder reads a repository's files.

Everything after this (detecting pieces, planning, rendering) is a pure function of
the facts, so it is tested with plain dictionaries and no files at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .errors import ConfigError

# Every file name any piece looks at. A binder folder holds these; so does the root.
CONFIG_FILES = (
    "requirements.txt",
    "requirements.lock",
    "apt.txt",
    "postBuild",
    "start",
    "runtime.txt",
    "setup.py",
    "pyproject.toml",
    "Pipfile",
    "Pipfile.lock",
    "Dockerfile",
    "environment.yml",
    "environment.yaml",
    "install.R",
    "DESCRIPTION",
    "Project.toml",
    "JuliaProject.toml",
    "REQUIRE",
    "default.nix",
)
BINDER_DIRS = (".binder", "binder")
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class RepoFacts:
    """What a repository holds, as far as building it is concerned.

    `config_dir` is "" (the root), "binder" or ".binder"; `files` maps each
    configuration file found there to its text."""

    config_dir: str = ""
    files: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))

    def has(self, name: str) -> bool:
        return name in self.files

    def text(self, name: str) -> str:
        return self.files.get(name, "")

    def path(self, name: str) -> str:
        """The file's path relative to the repository root, '/'-separated."""
        return f"{self.config_dir}/{name}" if self.config_dir else name


def choose_config_dir(dirs: set[str]) -> str:
    """repo2docker's rule: `.binder/` or `binder/` holds the configuration, never both;
    when one exists, configuration files at the root are ignored."""
    present = [d for d in BINDER_DIRS if d in dirs]
    if len(present) > 1:
        raise ConfigError(
            "the repository has both 'binder/' and '.binder/'; keep one of them "
            "(they are exclusive, as on mybinder.org)"
        )
    return present[0] if present else ""


def scan(root: Path) -> RepoFacts:
    """Read the configuration files of the repository checked out at `root`."""
    if not root.is_dir():
        raise ConfigError(f"not a folder: {root}")
    config_dir = choose_config_dir({d for d in BINDER_DIRS if (root / d).is_dir()})
    base = root / config_dir if config_dir else root
    files: dict[str, str] = {}
    for name in CONFIG_FILES:
        path = base / name
        if not path.is_file():
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            raise ConfigError(f"{path.relative_to(root)} is a link that points outside the repository")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path.relative_to(root)} is larger than 1 MiB; is it really a configuration file?")
        try:
            files[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path.relative_to(root)} is not UTF-8 text") from None
    return RepoFacts(config_dir=config_dir, files=files)
