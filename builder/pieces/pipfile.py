"""Pure conversions of Pipfile and Pipfile.lock into requirement lines."""

from __future__ import annotations

import json
import re
import tomllib

from ..errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?$")
_SAFE = re.compile(r"^[^\s;\\]+$")


def _check(value: str, where: str) -> str:
    if not _SAFE.match(value):
        raise ConfigError(f"{where}: unexpected characters in {value!r}")
    return value


def _requirement(name: str, spec: object, where: str) -> tuple[str | None, str | None]:
    """One Pipfile or lock entry -> (requirement line, editable local path)."""
    if not _NAME.match(name):
        raise ConfigError(f"{where}: {name!r} is not a package name")
    if spec == "*" or spec == "":
        return name, None
    if isinstance(spec, str):
        return f"{name}{_check(spec, where)}", None
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: cannot read the entry for {name}")
    if "path" in spec:
        path = _check(str(spec["path"]), where)
        if path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(f"{where}: {name} points outside the repository ({path})")
        return None, path
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


def pipfile_lock_requirements(text: str, where: str) -> tuple[list[str], list[str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where} is not valid JSON: {err.msg} (line {err.lineno})") from None
    return _collect(data.get("default", {}), where)


def pipfile_requirements(text: str, where: str) -> tuple[list[str], list[str]]:
    data = _toml(text, where)
    return _collect(data.get("packages", {}), where)


def pipfile_python(text: str, where: str) -> str | None:
    version = _toml(text, where).get("requires", {}).get("python_version")
    if version is None:
        return None
    match = re.match(r"^(3\.\d+)", str(version))
    if not match:
        raise ConfigError(f"{where}: python_version {version!r} is not a Python 3 version")
    return match.group(1)


def _toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where} is not valid TOML: {err}") from None


def _collect(entries: dict, where: str) -> tuple[list[str], list[str]]:
    lines: list[str] = []
    editables: list[str] = []
    for name, spec in entries.items():
        line, path = _requirement(name, spec, where)
        if line:
            lines.append(line)
        if path:
            editables.append(path)
    return lines, editables
