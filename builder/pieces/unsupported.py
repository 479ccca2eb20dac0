"""Configuration files whose package sources this machine cannot reach.

They are never silently ignored: the build stops and says which file and why."""

from __future__ import annotations

from ..errors import UnsupportedConfig
from ..facts import RepoFacts
from .base import Contribution, Piece


class UnreachableSource(Piece):
    def __init__(self, files: tuple[str, ...], needs: str, instead: str):
        self.files = files
        self.needs = needs
        self.instead = instead
        self.name = files[0]

    def detect(self, facts: RepoFacts) -> bool:
        return any(facts.has(f) for f in self.files)

    def contribute(self, facts: RepoFacts) -> Contribution:
        found = next(f for f in self.files if facts.has(f))
        raise UnsupportedConfig(
            f"{facts.path(found)} needs {self.needs}, which cannot be reached from this machine "
            f"(only PyPI and Debian packages can); {self.instead}"
        )


UNSUPPORTED = (
    UnreachableSource(
        ("install.R", "DESCRIPTION"),
        "CRAN",
        "use Debian's r-cran-* packages in apt.txt instead",
    ),
    UnreachableSource(
        ("Project.toml", "JuliaProject.toml", "REQUIRE"),
        "the Julia package registry",
        "Julia environments are not supported here",
    ),
    UnreachableSource(("default.nix",), "Nix channels", "use apt.txt and requirements.txt instead"),
)
