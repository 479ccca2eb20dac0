"""The lock: the exact resolved package set of an image. Pure functions over its text."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .errors import ConfigError

LOCK_PATH = "/srv/dsbuild/requirements.lock"
LOCK_FILE = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonicalize_name(name: str) -> str:
    """PEP 503 normalised name (as packaging's, without importing it on every start)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, str]:
    """{canonical name: version} from a lock (`name==version` lines, hashes and comments skipped)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def lock_digest(text: str) -> str:
    """sha256 of the pins alone, so comments and line order do not change it."""
    pins = parse_lock(text)
    return hashlib.sha256("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())).encode()).hexdigest()


def check_lock(requirements: str, lock_text: str, where: str = "requirements.txt") -> None:
    """Every requirement must be satisfied by a pin in the lock, or the build stops."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins = parse_lock(lock_text)
    if not pins:
        raise ConfigError(f"{LOCK_FILE} pins no packages; write it with `dsbuild lock REPO --write`")
    for raw in requirements.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            raise ConfigError(f"{where}: cannot read {line!r} to check it against {LOCK_FILE}") from None
        name = canonicalize_name(req.name)
        if name not in pins:
            raise ConfigError(f"{LOCK_FILE} does not match {where}: {req.name} is not in the lock")
        if req.specifier and not req.specifier.contains(pins[name], prereleases=True):
            raise ConfigError(f"{LOCK_FILE} does not match {where}: {line} but the lock has {req.name}=={pins[name]}")


@dataclass(frozen=True)
class LockDiff:
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    changed: tuple[tuple[str, str, str], ...]  # name, old, new

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_locks(old: str, new: str) -> LockDiff:
    return diff_pins(parse_lock(old), parse_lock(new))


def diff_pins(a: dict[str, str], b: dict[str, str]) -> LockDiff:
    return LockDiff(
        added=tuple((n, b[n]) for n in sorted(b.keys() - a.keys())),
        removed=tuple((n, a[n]) for n in sorted(a.keys() - b.keys())),
        changed=tuple((n, a[n], b[n]) for n in sorted(a.keys() & b.keys()) if a[n] != b[n]),
    )
