"""environment.yml without conda: a PyPI rendering of the environment.

Conda channels cannot be reached from these machines, but most Binder environment.yml
files list packages PyPI also has. The `pip:` section is installed as it is; conda
dependencies go through the name map in condamap.py; `python=3.X` asks for a Python
like runtime.txt does. Anything that cannot be mapped stops the build with one line."""

from __future__ import annotations

import re

from ..errors import ConfigError, UnsupportedConfig
from ..facts import RepoFacts
from ..pythons import PythonRequest
from .base import Contribution, EnvFile, Piece, RepoInstall
from .condamap import DEBIAN_PACKAGES, PYPI_NAMES, conda_only
from .pipfile import repo_path

ENV_FILES = ("environment.yml", "environment.yaml")
RENDERING_LABEL = "environment.yml rendered with PyPI packages (no conda)"
# name, then an optional version spec: `=1.2`, `==1.2`, `>=1,<2`, `1.2.*`, `=1.2=build`.
_SPEC = re.compile(r"^(?:(?P<channel>[A-Za-z0-9_.-]+)::)?(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?P<version>[^\s\[\]]*(?:\s+[^\s\[\]]+)?)?$")
_PIN = re.compile(r"^(?P<op>==|=)?(?P<v>[0-9][A-Za-z0-9.*+!]*)(?:=[A-Za-z0-9_.*]+)?$")
_RANGE = re.compile(r"^(?:(?:[<>!=~]=?|==)[0-9][A-Za-z0-9.*+!]*,?)+$")


def load_environment(text: str, where: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies", []), list):
        raise ConfigError(f"{where}: expected a mapping with a 'dependencies' list")
    return data


def pypi_version(version: str) -> str | None:
    """A conda version spec -> a PEP 440 specifier ("" for none, None if unreadable)."""
    version = version.replace(" ", "")
    if not version:
        return ""
    if match := _PIN.match(version):
        pin = match.group("v")
        if match.group("op") == "==" or pin.endswith("*"):
            return f"=={pin}"
        return f"=={pin}.*"  # conda's `=1.26` and `1.26` match 1.26.x
    if _RANGE.match(version):
        return version.rstrip(",")
    return None


class EnvironmentYmlPiece(Piece):
    name = "environment.yml"

    def detect(self, facts: RepoFacts) -> bool:
        return any(facts.has(f) for f in ENV_FILES)

    def contribute(self, facts: RepoFacts) -> Contribution:
        file = next(f for f in ENV_FILES if facts.has(f))
        where = facts.path(file)
        data = load_environment(facts.text(file), where)
        rendering = _Rendering(where, facts.config_dir)
        for entry in data.get("dependencies") or []:
            rendering.add(entry)
        if rendering.unmappable:
            raise UnsupportedConfig(
                f"{where}: no PyPI or Debian equivalent for {', '.join(rendering.unmappable)}; "
                "environment.yml is rendered with PyPI packages here (conda channels cannot be reached)"
            )
        channels = [str(c) for c in data.get("channels") or []]
        notes = [f"{where} is rendered with PyPI packages (no conda)"]
        if channels:
            notes.append(f"{where}: conda channels ignored: {', '.join(channels)}")
        if ignored := [facts.path(f) for f in ("Pipfile", "Pipfile.lock", "requirements.txt") if facts.has(f)]:
            notes.append(f"{', '.join(ignored)} ignored: {where} wins, as on mybinder.org")
        if rendering.assumed:
            notes.append(f"{where}: assumed to have the same name on PyPI: {', '.join(rendering.assumed)}")
        text = "".join(f"{line}\n" for line in rendering.lines)
        return Contribution(
            apt_packages=tuple(rendering.apt),
            env_files=(EnvFile("environment.requirements.txt", text),),
            repo_installs=tuple(rendering.repo),
            python=rendering.python,
            notes=tuple(notes),
        )


class _Rendering:
    def __init__(self, where: str, config_dir: str):
        self.where, self.config_dir = where, config_dir
        self.lines: list[str] = []
        self.apt: list[str] = []
        self.repo: list[RepoInstall] = []
        self.unmappable: list[str] = []
        self.assumed: list[str] = []
        self.python: PythonRequest | None = None

    def add(self, entry: object) -> None:
        if isinstance(entry, dict) and set(entry) == {"pip"} and isinstance(entry["pip"], list):
            for line in entry["pip"]:
                self.add_pip(str(line))
        elif isinstance(entry, str):
            self.add_conda(entry.strip())
        else:
            raise ConfigError(f"{self.where}: cannot read the dependency {str(entry)[:60]!r}")

    def add_conda(self, spec: str) -> None:
        match = _SPEC.match(spec)
        version = pypi_version(match.group("version") or "") if match else None
        if match is None or version is None:
            self.unmappable.append(spec[:40])
            return
        name = match.group("name").lower()
        if name == "python":
            self.python = _python(match.group("version") or "", self.where)
        elif name == "pip":
            return
        elif name in DEBIAN_PACKAGES:
            self.apt.extend(p for p in DEBIAN_PACKAGES[name] if p not in self.apt)
        elif conda_only(name):
            self.unmappable.append(name)
        else:
            if name not in PYPI_NAMES:
                self.assumed.append(name)
            self.lines.append(f"{PYPI_NAMES.get(name) or name}{version}")

    def add_pip(self, line: str) -> None:
        """pip: lines are requirement lines; paths are relative to the environment file's folder."""
        line = line.split(" #", 1)[0].strip()
        if re.search(r"[\s;\\]", line.split(" ;", 1)[0].replace("-e ", "", 1).replace("-r ", "", 1)) and not line.startswith("--"):
            raise ConfigError(f"{self.where}: cannot read the pip line {line[:60]!r}")
        for flag, kind in (("-e ", "editable"), ("-r ", "requirements")):
            if line.startswith(flag):
                self.repo.append(RepoInstall(kind, repo_path(self.config_dir, line[len(flag):].strip(), self.where)))
                return
        if line.startswith((".", "/")):
            self.repo.append(RepoInstall("local", repo_path(self.config_dir, line, self.where)))
        elif line.startswith("-"):
            raise ConfigError(f"{self.where}: pip option {line.split()[0]!r} is not supported here")
        elif line:
            self.lines.append(line)


def _python(version: str, where: str) -> PythonRequest | None:
    version = version.replace(" ", "")
    if not version:
        return None
    if match := re.match(r"^(>=)?=?=?(3(?:\.\d+){0,2})(?:\.\*)?(?:=[A-Za-z0-9_.*]+)?$", version):
        return PythonRequest(match.group(2), where, at_least=bool(match.group(1)))
    if match := re.match(r"^>=(3(?:\.\d+){0,2}),<", version):
        return PythonRequest(match.group(1), where, at_least=True)
    raise ConfigError(f"{where}: cannot read the Python version {version!r} (want python=3.X)")
