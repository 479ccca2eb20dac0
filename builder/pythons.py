"""Which Python a repository asks for, and which one it gets. Pure.

A repository asks in runtime.txt (`python-3`, `python-3.X`, `python-3.X.Y`), in a
Pipfile's `[requires]` or in an environment.yml's `python=3.X`. The default base image
is then picked among the Debian releases this machine's apt mirror serves, by the
Python each one ships (`SUITE_PYTHONS`); within a base, the exact minor version wins,
otherwise the nearest newer one, with one warning line (`--exact-python` refuses
instead). With `--python-downloads`, a version no Debian release has is installed by
uv (`uv python install`), which needs uv's Python downloads (or its mirror)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

# Debian releases the default base can be built from, and the python3 each one ships.
# (forky/testing moves and the host's debootstrap has no script for it: not offered.)
SUITE_PYTHONS = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13"}
DEFAULT_SUITE = "bookworm"
BASE_REPOSITORY = "dsbuild-base"
_VERSION = re.compile(r"^3(?:\.(\d+)(?:\.(\d+))?)?$")


def base_ref(suite: str) -> str:
    return f"{BASE_REPOSITORY}:{suite}"


def minor_key(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor.split(".")[0] or 0)


@dataclass(frozen=True)
class PythonRequest:
    """`version` is "3", "3.X" or "3.X.Y"; `where` names the file that asked;
    `at_least` is true for `python>=3.X` (a newer one is no surprise)."""

    version: str
    where: str
    at_least: bool = False

    def __post_init__(self) -> None:
        if not _VERSION.match(self.version):
            raise ConfigError(f"{self.where}: {self.version!r} is not a Python 3 version (3, 3.X or 3.X.Y)")

    @property
    def minor(self) -> str | None:
        """ "3.X", or None when any Python 3 will do."""
        parts = self.version.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 else None

    def __str__(self) -> str:
        return f"{'>=' if self.at_least else ''}{self.version} ({self.where})"


def parse_version(text: str, where: str) -> PythonRequest:
    version = text.strip()
    if not _VERSION.match(version):
        raise ConfigError(f"{where}: {version[:40]!r} is not a Python 3 version (3, 3.X or 3.X.Y)")
    return PythonRequest(version, where)


def suite_for(request: PythonRequest | None, downloads: bool = False) -> str:
    """The Debian release whose python3 best answers the request: the exact minor
    version, else (unless uv will download it) the nearest newer one."""
    if request is None or request.minor is None:
        return DEFAULT_SUITE
    wanted = minor_key(request.minor)
    if request.at_least and wanted <= minor_key(SUITE_PYTHONS[DEFAULT_SUITE]):
        return DEFAULT_SUITE
    by_version = sorted(SUITE_PYTHONS.items(), key=lambda item: minor_key(item[1]))
    for suite, version in by_version:
        if minor_key(version) == wanted:
            return suite
    if downloads:
        return DEFAULT_SUITE
    newer = [suite for suite, version in by_version if minor_key(version) > wanted]
    return newer[0] if newer else DEFAULT_SUITE


def offered() -> str:
    return ", ".join(f"{v} ({s})" for s, v in sorted(SUITE_PYTHONS.items(), key=lambda i: minor_key(i[1])))


@dataclass(frozen=True)
class PythonInstall:
    version: str  # "3.11"
    path: str  # "/usr/bin/python3.11"; for a uv-managed Python, the version uv installs
    managed: bool = False  # installed by `uv python install` during the build


@dataclass(frozen=True)
class PythonChoice:
    install: PythonInstall
    requested: PythonRequest | None = None
    warning: str | None = None


def choose_python(
    image: str,
    pythons: tuple[PythonInstall, ...],
    default: str | None,
    request: PythonRequest | None,
    exact: bool = False,
    downloads: bool = False,
) -> PythonChoice:
    """The base's Python for the request: exact minor version, else a uv-managed one
    (downloads), else the nearest newer (not with exact), else a clear error."""
    have = ", ".join(p.version for p in pythons) or "none"
    wanted = request.minor if request else None
    if wanted is None:
        install = next((p for p in pythons if p.version == default), None)
        if install is None:
            raise ConfigError(f"the base image {image} has no python3 (found: {have}); pick another --base-image")
        return PythonChoice(install, request)
    same = next((p for p in pythons if p.version == wanted), None)
    if same is not None:
        return PythonChoice(same, request)
    if downloads:
        return PythonChoice(PythonInstall(wanted, request.version, managed=True), request)
    newer = sorted((p for p in pythons if minor_key(p.version) > minor_key(wanted)), key=lambda p: minor_key(p.version))
    if exact or not newer:
        why = "--exact-python is set" if exact and newer else "it has no newer one"
        raise ConfigError(
            f"Python {request} was asked for, but the base image {image} has Python {have} and {why}; "
            f"Debian bases here offer {offered()}; --python-downloads installs it with uv where that download is reachable"
        )
    used = newer[0]
    warning = None
    if not request.at_least:
        warning = (
            f"warning: Python {request} was asked for; building with Python {used.version}, "
            "the nearest newer one available (--exact-python refuses instead)"
        )
    return PythonChoice(used, request, warning)
