"""Python pieces: runtime.txt, Pipfile(.lock), requirements.txt, setup.py / pyproject.toml."""

from __future__ import annotations

import re
import tomllib

from ..errors import ConfigError, UnsupportedConfig
from ..facts import RepoFacts
from ..pythons import PythonRequest
from .base import Contribution, EnvFile, Piece, RepoInstall

_RUNTIME_PY = re.compile(r"^python-(3(?:\.\d+){0,2})$")
# Lines of a requirements file that refer to other files of the repository.
_LOCAL_REF = re.compile(r"^(?:-r|--requirement|-c|--constraint|-e|--editable)\s*(?:\.|/|[^:\s]*$)|^\.{1,2}(?:/|$)|^file:")


def parse_runtime(text: str, where: str = "runtime.txt") -> PythonRequest:
    """`python-3`, `python-3.X` or `python-3.X.Y`. R runtimes need CRAN, which is out of reach here."""
    line = text.strip()
    if match := _RUNTIME_PY.match(line):
        return PythonRequest(match.group(1), where)
    if line.startswith("r-"):
        raise UnsupportedConfig(f"{where} asks for R ({line}), which needs CRAN; CRAN cannot be reached from this machine")
    raise ConfigError(f"{where}: expected 'python-3', 'python-3.X' or 'python-3.X.Y', got {line[:60]!r}")


def refers_to_repo(requirements: str) -> bool:
    """True when a requirements file installs the repository itself or includes other files
    (`-e .`, `.`, `-r other.txt`): then the install must wait until the repository is copied."""
    for raw in requirements.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and _LOCAL_REF.match(line):
            return True
    return False


def _has_environment_yml(facts: RepoFacts) -> bool:
    return facts.has("environment.yml") or facts.has("environment.yaml")


class RuntimePiece(Piece):
    name = "runtime.txt"

    def detect(self, facts: RepoFacts) -> bool:
        return facts.has("runtime.txt")

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(python=parse_runtime(facts.text("runtime.txt"), facts.path("runtime.txt")))


class RequirementsPiece(Piece):
    name = "requirements.txt"

    def detect(self, facts: RepoFacts) -> bool:
        return facts.has("requirements.txt") and not any(
            facts.has(f) for f in ("Pipfile", "Pipfile.lock", "environment.yml", "environment.yaml")
        )

    def contribute(self, facts: RepoFacts) -> Contribution:
        text = facts.text("requirements.txt")
        if not refers_to_repo(text):
            return Contribution(env_files=(EnvFile("requirements.txt", text),))
        where = facts.path("requirements.txt")
        split = split_requirements(text, where)
        if split is None:  # it includes other files (-r, -c): installed as it is, after the copy
            note = f"{where} includes other files of the repository, so it is installed after the lock, outside it"
            return Contribution(repo_installs=(RepoInstall("requirements", where),), notes=(note,))
        lines, projects = split
        env = (EnvFile("requirements.txt", lines),) if lines.strip() else ()
        return Contribution(env_files=env, repo_installs=projects)


def split_requirements(text: str, where: str) -> tuple[str, tuple[RepoInstall, ...]] | None:
    """A requirements file whose only lines about the repository are its packages (`-e .`,
    `./pkg`): (the other lines, those packages). None when it includes other files."""
    from .project import path_install

    kept: list[str] = []
    projects: list[RepoInstall] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and _LOCAL_REF.match(line):
            install = path_install(line, where)
            if install is None:
                return None
            projects.append(install)
        else:
            kept.append(raw)
    return "".join(f"{line}\n" for line in kept), tuple(projects)


class SetupPiece(Piece):
    """An installable project at the root (setup.py, or pyproject.toml with a build
    system or a [project] table) is installed editable after the repository is copied.
    Not with a Pipfile: as with pipenv, the project is installed only if the Pipfile names it."""

    name = "setup.py"

    def detect(self, facts: RepoFacts) -> bool:
        if facts.config_dir or ((facts.has("Pipfile") or facts.has("Pipfile.lock")) and not _has_environment_yml(facts)):
            return False
        return facts.has("setup.py") or _installable_pyproject(facts.text("pyproject.toml"))

    def contribute(self, facts: RepoFacts) -> Contribution:
        return Contribution(repo_installs=(RepoInstall("editable", "."),))


def _installable_pyproject(text: str) -> bool:
    if not text:
        return False
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"pyproject.toml is not valid TOML: {err}") from None
    return "project" in data or "build-system" in data


class PipfilePiece(Piece):
    """Pipfile.lock (preferred) or Pipfile, turned into a requirements file for uv:
    no pipenv needed in the image. Dev packages are installed too; `{path = ...}`
    entries are relative to the Pipfile's folder and installed after the copy."""

    name = "Pipfile"

    def detect(self, facts: RepoFacts) -> bool:
        # An environment.yml wins over a Pipfile, as on mybinder.org (its piece says so).
        return (facts.has("Pipfile") or facts.has("Pipfile.lock")) and not _has_environment_yml(facts)

    def contribute(self, facts: RepoFacts) -> Contribution:
        from .pipfile import pipfile_lock_requirements, pipfile_python, pipfile_requirements, repo_path

        name = "Pipfile.lock" if facts.has("Pipfile.lock") else "Pipfile"
        read = pipfile_lock_requirements if name == "Pipfile.lock" else pipfile_requirements
        lines, locals_ = read(facts.text(name), facts.path(name))
        python = pipfile_python(facts.text("Pipfile"), facts.path("Pipfile")) if facts.has("Pipfile") else None
        env = (EnvFile("Pipfile.requirements.txt", "".join(f"{line}\n" for line in lines)),)
        repo = tuple(
            RepoInstall("editable" if p.editable else "local", repo_path(facts.config_dir, p.path, facts.path(name)))
            for p in locals_
        )
        return Contribution(env_files=env, repo_installs=repo, python=python)
