"""The repository's own package(s): where their dependencies come from. Pure.

A project's dependencies go into the lock like every other requirement; only its own code
is installed after the lock, with `--no-deps`. They are read without running anything:

- statically, from pyproject.toml's `[project] dependencies` (and the optional
  dependencies of the extras asked for), when the project is the repository's root and
  pyproject.toml does not declare them `dynamic` (PEP 621: a build backend may not change
  them then);
- otherwise (setup.py, setup.cfg, dynamic dependencies, a package in a sub-folder), from
  the metadata its build backend writes inside the build container, in a stage of its own
  (templates/Dockerfile.j2, "project metadata"): never on the host, never in the service.
  Its `Requires-Dist` lines are checked again, with the system's tools only, before they
  are resolved."""

from __future__ import annotations

import re
import tomllib

from ..errors import ConfigError
from .base import EnvFile, RepoInstall

PROJECT_FILE = "project-dependencies.txt"  # the static dependencies, an environment file
REQUIRES_FILE = "project.requires"  # the Requires-Dist lines from the metadata stage
_EXTRAS = re.compile(r"^\[([A-Za-z0-9][A-Za-z0-9_.-]*(?:\s*,\s*[A-Za-z0-9][A-Za-z0-9_.-]*)*)\]$")
# `-e PATH[extras]` or `PATH[extras]`, PATH relative to the repository root (pip and uv run there).
_PATH_LINE = re.compile(r"^(?:(-e|--editable)(?:\s+|=))?(\.[^\s\[;#]*)(\[[^\]]*\])?$")


def parse_extras(text: str, where: str) -> tuple[str, ...]:
    if not text:
        return ()
    match = _EXTRAS.match(text)
    if not match:
        raise ConfigError(f"{where}: cannot read the extras {text[:40]!r}")
    return tuple(sorted({re.sub(r"[-_.]+", "-", e.strip()).lower() for e in match.group(1).split(",")}))


def path_install(line: str, where: str) -> RepoInstall | None:
    """`-e .`, `.`, `-e ./pkg[dev]`: a project of the repository, or None for any other line."""
    from .pipfile import repo_path

    match = _PATH_LINE.match(line)
    if not match:
        return None
    path = repo_path("", match.group(2), where)
    return RepoInstall("editable" if match.group(1) else "local", path, parse_extras(match.group(3) or "", where))


def static_dependencies(pyproject: str, extras: tuple[str, ...], where: str = "pyproject.toml") -> tuple[str, ...] | None:
    """The requirement strings pyproject.toml declares, or None when they are not static."""
    try:
        project = tomllib.loads(pyproject).get("project")
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where} is not valid TOML: {err}") from None
    if not isinstance(project, dict) or "name" not in project:
        return None
    dynamic = project.get("dynamic") or []
    if "dependencies" in dynamic or (extras and "optional-dependencies" in dynamic):
        return None
    found = list(_strings(project.get("dependencies", []), f"{where} [project] dependencies"))
    optional = project.get("optional-dependencies") or {}
    if not isinstance(optional, dict):
        raise ConfigError(f"{where}: [project.optional-dependencies] is not a table")
    named = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in optional.items()}
    for extra in extras:
        found += _strings(named.get(extra, []), f"{where} [project.optional-dependencies] {extra}")
    return tuple(found)


def _strings(value: object, where: str) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(value, list):
        raise ConfigError(f"{where} is not a list")
    lines = []
    for item in value:
        try:
            Requirement(str(item))
        except InvalidRequirement:
            raise ConfigError(f"{where}: {str(item)[:60]!r} is not a requirement") from None
        lines.append(str(item))
    return lines


def project_dependencies(installs: tuple[RepoInstall, ...], pyproject: str | None
                         ) -> tuple[tuple[EnvFile, ...], tuple[RepoInstall, ...]]:
    """(the static dependencies as an environment file, the projects whose metadata is
    built in the build container). `pyproject` is the root's pyproject.toml, if any."""
    lines: list[str] = []
    built: list[RepoInstall] = []
    for install in installs:
        if not install.project:
            continue
        static = static_dependencies(pyproject, install.extras) if install.path == "." and pyproject else None
        if static is None:
            built.append(install)
        else:
            lines.extend(line for line in static if line not in lines)
    env = (EnvFile(PROJECT_FILE, "".join(f"{line}\n" for line in lines)),) if lines else ()
    return env, tuple(built)
