"""The rest of the environment in the lock: Debian packages, the base image, and what
was installed after the lock. Pure functions over text.

`requirements.lock` as `dsbuild lock` writes it is the Python lock (pip and uv read it)
followed by comment lines that only dsbuild reads:

    # dsbuild-base: image=dsbuild-base:bookworm id=sha256:... suite=bookworm created=2026-11-20T08:00:00Z
    # dsbuild-apt: tree=2.1.0-1

Inside an image the parts live apart: the Python lock in LOCK_PATH, the Debian packages
that the apt.txt step installed in APT_LOCK_PATH (written by root, in a folder of root's),
the base in the image's labels, the repository's own packages (installed from its folder
with --no-deps, their dependencies being in the lock) in PROJECT_PATH, written before
postBuild runs, and the Python distributions present after postBuild in INSTALLED_PATH (a
listing of *.dist-info names, made without running the environment, with the system's
PATH only). All are root's, in folders of root's: postBuild, which runs as the notebook
user, can change none of them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .lock import LOCK_FILE, LockDiff, canonicalize_name, diff_locks, diff_pins, parse_lock

APT_LOCK_PATH = "/var/lib/dsbuild/apt.lock"
INSTALLED_PATH = "/var/lib/dsbuild/installed.txt"
PROJECT_PATH = "/var/lib/dsbuild/project.txt"  # the repository's own packages, sealed before postBuild
_APT_LINE = "# dsbuild-apt: "
_BASE_LINE = "# dsbuild-base: "
_APT_PIN = re.compile(r"^([a-z0-9][a-z0-9+.-]+)=([A-Za-z0-9.+:~-]+)$")
_DIST_INFO = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._]*)-([A-Za-z0-9.+!]+)\.dist-info$")


@dataclass(frozen=True)
class BaseRecord:
    """The base image a lock was made on."""

    image: str
    image_id: str
    suite: str = ""
    created: str = ""

    def line(self) -> str:
        fields = {"image": self.image, "id": self.image_id, "suite": self.suite, "created": self.created}
        return _BASE_LINE + " ".join(f"{k}={v}" for k, v in fields.items() if v)

    def describe(self) -> str:
        extra = ", ".join(x for x in (f"Debian {self.suite}" if self.suite else "",
                                      f"built {self.created}" if self.created else "") if x)
        return f"{self.image} ({self.image_id[:19]}{', ' + extra if extra else ''})"


def parse_apt_lock(text: str) -> dict[str, str]:
    """{package: version} from `name=version` lines, or the `# dsbuild-apt:` lines of a lock."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        line = line[len(_APT_LINE):].strip() if line.startswith(_APT_LINE) else line
        if match := _APT_PIN.match(line):
            pins[match.group(1)] = match.group(2)
    return pins


def parse_base(text: str) -> BaseRecord | None:
    for raw in text.splitlines():
        if raw.startswith(_BASE_LINE):
            fields = dict(w.partition("=")[::2] for w in raw[len(_BASE_LINE):].split() if "=" in w)
            if fields.get("image") and fields.get("id"):
                return BaseRecord(fields["image"], fields["id"], fields.get("suite", ""), fields.get("created", ""))
    return None


def python_part(text: str) -> str:
    """The lock without dsbuild's own lines (what `uv pip sync` installs)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith((_APT_LINE, _BASE_LINE)))


def compose_lock(python_lock: str, apt_lock: str | None, base: BaseRecord | None) -> str:
    """The whole lock: the Python lock, then the base and the Debian packages."""
    text = python_part(python_lock)
    text += "" if text.endswith("\n") or not text else "\n"
    if base is not None:
        text += base.line() + "\n"
    for name, version in sorted(parse_apt_lock(apt_lock or "").items()):
        text += f"{_APT_LINE}{name}={version}\n"
    return text


def apt_section(lock: str) -> dict[str, str]:
    """{package: version} of a whole lock's `# dsbuild-apt:` lines."""
    return parse_apt_lock("\n".join(line for line in lock.splitlines() if line.startswith(_APT_LINE)))


def diff_environment(old: str, new: str) -> tuple[LockDiff, LockDiff]:
    """(Python packages, Debian packages) added, removed and changed between two whole locks."""
    return diff_locks(old, new), diff_pins(apt_section(old), apt_section(new))


def locked_apt(apt_txt: tuple[str, ...], lock: str, where: str) -> tuple[str, ...] | None:
    """The `name=version` list a locked build installs, or None when the lock records no
    Debian packages. Every apt.txt package must be in it, as for the Python requirements."""
    pins = apt_section(lock)
    if not pins:
        return None
    for word in apt_txt:
        name, _, version = word.split(":", 1)[0].partition("=")
        if name not in pins:
            raise ConfigError(f"{LOCK_FILE} does not match {where}: {name} is not in the lock")
        if version and version != pins[name]:
            raise ConfigError(f"{LOCK_FILE} does not match {where}: {word} but the lock has {name}={pins[name]}")
    return tuple(f"{n}={v}" for n, v in sorted(pins.items()))


def check_base(lock: str, suite: str, image_id: str, strict: bool = False) -> str | None:
    """A base of another Debian release stops a locked build. Another image of the same
    release (a base rebuilt, or made on another machine) stops it with --locked (strict);
    otherwise it is a note (returned), so a committed lock still launches elsewhere."""
    record = parse_base(lock)
    if record is None:
        return None
    if record.suite and suite and record.suite != suite:
        raise ConfigError(
            f"{LOCK_FILE} was made on Debian {record.suite} ({record.describe()}) but the base is Debian {suite}: "
            f"build that base with `dsbuild base --suite {record.suite}` and pass --base-image {record.image}, "
            "or resolve again with --relock")
    if not image_id or record.image_id == image_id:
        return None
    if strict:
        raise ConfigError(
            f"--locked: {LOCK_FILE} was made on {record.describe()}, but {record.image} here is {image_id[:19]}: "
            f"`docker load` that base image, or make the lock on this base with `dsbuild lock REPO --write`")
    return (f"the base image differs from the one {LOCK_FILE} was made on, {record.describe()}: "
            f"Debian packages are installed at the locked versions; `docker load` that base to get it exactly")


def parse_installed(text: str) -> dict[str, str]:
    """{canonical name: version} from a listing of *.dist-info folder names."""
    found: dict[str, str] = {}
    for raw in text.split():
        name = raw.rsplit("/", 1)[-1]
        if match := _DIST_INFO.match(name):
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def outside_lock(lock: str, installed: str) -> dict[str, str]:
    """What is installed but not as the lock pins it (postBuild's `pip install`, the repository's package)."""
    pins = parse_lock(lock)
    return {n: v for n, v in sorted(parse_installed(installed).items()) if pins.get(n) != v}


def own_and_outside(lock: str, installed: str, own: str) -> tuple[dict[str, str], dict[str, str]]:
    """(the repository's own code, what else is installed outside the lock): the second
    is what postBuild (or a requirements file that includes others) added or changed."""
    outside = outside_lock(lock, installed)
    mine = parse_installed(own)
    return ({n: v for n, v in outside.items() if mine.get(n) == v},
            {n: v for n, v in outside.items() if mine.get(n) != v})
