"""apt.txt: Debian packages installed before anything else."""

from __future__ import annotations

import re

from ..errors import ConfigError
from ..facts import RepoFacts
from .base import Contribution, Piece

# Debian package names (policy 5.6.1), an optional :arch and an optional =version.
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+:~-]+)?$")


def parse_apt_txt(text: str, where: str = "apt.txt") -> tuple[str, ...]:
    packages: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for word in line.split():
            if not _APT_NAME.match(word):
                raise ConfigError(f"{where} line {number}: {word!r} is not a Debian package name")
            if word not in packages:
                packages.append(word)
    return tuple(packages)


class AptPiece(Piece):
    name = "apt.txt"

    def detect(self, facts: RepoFacts) -> bool:
        return facts.has("apt.txt")

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(apt_packages=parse_apt_txt(facts.text("apt.txt"), facts.path("apt.txt")))


# Words in postBuild or start that mean the script runs Node.js tools. `node` and `jlpm`
# (JupyterLab's bundled yarn) need nodejs only; npm, npx and yarn need npm too, which
# triples the size (on bookworm: nodejs about 88 MiB, with npm about 267 MB).
_NODE_WORDS = re.compile(r"(?<![\w.-])(node|nodejs|npm|npx|yarn|yarnpkg|jlpm)(?![\w-])")
_NPM_WORDS = {"npm", "npx", "yarn", "yarnpkg"}


class NodePiece(Piece):
    """Debian's nodejs (and npm when the scripts use npm, npx or yarn), when postBuild or
    start runs node tools (building a JupyterLab extension, `npm install -g`). The size
    they add is measured in docs/benchmarks.md."""

    name = "node.js"

    def detect(self, facts: RepoFacts) -> bool:
        return bool(_words(facts))

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(apt_packages=("nodejs", "npm") if _words(facts) & _NPM_WORDS else ("nodejs",))


def _words(facts: RepoFacts) -> set[str]:
    return {m.group(1) for name in ("postBuild", "start") for m in _NODE_WORDS.finditer(_code(facts.text(name)))}


def _code(script: str) -> str:
    """The script without its comment lines."""
    return "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
