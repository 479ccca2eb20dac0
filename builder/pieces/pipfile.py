"""Pure conversions of Pipfile and Pipfile.lock into requirement lines."""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from dataclasses import dataclass

from ..errors import ConfigError
from ..pythons import PythonRequest, parse_version

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?$")
_SAFE = re.compile(r"^[^\s;\\]+$")


def _check(value: str, where: str) -> str:
    if not _SAFE.match(value):
        raise ConfigError(f"{where}: unexpected characters in {value!r}")
    return value


@dataclass(frozen=True)
class LocalPath:
    """A `{path = ...}` entry: a folder of the repository, relative to the Pipfile's folder."""

    path: str
    editable: bool


def _requirement(name: str, spec: object, where: str) -> tuple[str | None, LocalPath | None]:
    """One Pipfile or lock entry -> (requirement line, local path)."""
    if not _NAME.match(name):
        raise ConfigError(f"{where}: {name!r} is not a package name")
    if spec == "*" or spec == "":
        return name, None
    if isinstance(spec, str):
        return f"{name}{_check(spec, where)}", None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: cannot read the entry for {name}")
    if "path" in spec:
        return None, LocalPath(_check(str(spec["path"]), where), bool(spec.get("editable")))
    extras = spec.get("extras") or []
    label = f"{name}[{','.join(_check(str(e), where) for e in extras)}]" if extras else name
    if "git" in spec:
        ref = spec.get("ref")
        url = _check(str(spec["git"]), where) + (f"@{_check(str(ref), where)}" if ref else "")
        return f"{label} @ git+{url}", None
    version = spec.get("version", "")
    line = f"{label}{_check(version, where) if version and version != '*' else ''}"
    if marker := spec.get("markers"):
        line += f" ; {marker}" if re.match(r"^[A-Za-z0-9_ .<>=!'\"()-]+$", marker) else ""
    # Hashes are left out: uv's hash checking would then demand hashes for JupyterLab too.
    return line, None


def pipfile_lock_requirements(text: str, where: str) -> tuple[list[str], list[LocalPath]]:
    """`default` and `develop` (repo2docker installs the dev packages too)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where} is not valid JSON: {err.msg} (line {err.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} is not a Pipfile.lock")
    return _collect(_with_dev(_table(data, "default", where), _table(data, "develop", where)), where)


def pipfile_requirements(text: str, where: str) -> tuple[list[str], list[LocalPath]]:
    """`[packages]` and `[dev-packages]`; a name in both keeps the `[packages]` entry."""
    data = _toml(text, where)
    return _collect(_with_dev(_table(data, "packages", where), _table(data, "dev-packages", where)), where)


def _with_dev(packages: dict, dev: dict) -> dict:
    return {**packages, **{name: spec for name, spec in dev.items() if name not in packages}}


def _table(data: dict, key: str, where: str) -> dict:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{key}] is not a table of packages")
    return table


def repo_path(config_dir: str, path: str, where: str) -> str:
    """A Pipfile path (relative to the Pipfile's folder) -> a path relative to the
    repository root; it must stay inside the repository."""
    joined = posixpath.normpath(posixpath.join(config_dir or ".", path))
    if path.startswith("/") or joined == ".." or joined.startswith("../"):
        raise ConfigError(f"{where}: path {path!r} points outside the repository")
    return joined


def pipfile_python(text: str, where: str) -> PythonRequest | None:
    """`[requires] python_full_version` (3.X.Y) or `python_version` (3.X), as pipenv reads them."""
    requires = _toml(text, where).get("requires", {})
    version = requires.get("python_full_version") or requires.get("python_version")
    if version is None:
        return None
    return parse_version(str(version), where)


def _toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where} is not valid TOML: {err}") from None


def _collect(entries: dict, where: str) -> tuple[list[str], list[LocalPath]]:
    lines: list[str] = []
    editables: list[LocalPath] = []
    for name, spec in entries.items():
        line, path = _requirement(name, spec, where)
        if line:
            lines.append(line)
        if path:
            editables.append(path)
    return lines, editables
