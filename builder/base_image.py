"""The base image: facts about any Debian-family base, and the default base built
locally from Debian packages (debootstrap, then `docker import`), since no image
registry can be reached from these machines."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from .engine import DockerEngine
from .errors import ConfigError, EngineUnavailable
from .names import BASE_DEFAULT_PYTHON_LABEL as DEFAULT_PYTHON_LABEL
from .names import BASE_PYTHONS_LABEL as PYTHONS_LABEL  # "3.11=/usr/bin/python3.11 3.12=..."
from .names import BASE_SUITE_LABEL
from .plan import BaseFacts, PythonInstall
from .pythons import DEFAULT_SUITE, SUITE_PYTHONS

# Debian releases whose names, in the host's own apt sources, mark a Debian mirror.
KNOWN_SUITES = ("bullseye", "bookworm", "trixie", "forky", "sid")
BASE_PACKAGES = ("python3", "ca-certificates", "tzdata")
# Python 3.9's standard library lacks distutils on Debian; uv needs it for older Pythons.
SUITE_PACKAGES = {"bullseye": ("python3-distutils",)}
# Like Debian's slim images: no docs, man pages or translations in the base.
DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""
_PROBE = (
    'for p in /usr/bin/python3.* /usr/local/bin/python3.*; do '
    'case "$p" in *[0-9]) [ -x "$p" ] && echo "py $p";; esac; done; '
    'd=$(command -v python3) && echo "default $(readlink -f "$d")"'
)


def parse_probe(image: str, output: str) -> BaseFacts:
    """What the probe printed -> BaseFacts (pure)."""
    pythons: dict[str, PythonInstall] = {}
    default = None
    for line in output.splitlines():
        kind, _, path = line.partition(" ")
        match = re.search(r"python(3\.\d+)$", path)
        if not match:
            continue
        if kind == "py":
            pythons.setdefault(match.group(1), PythonInstall(match.group(1), path))
        elif kind == "default":
            default = match.group(1)
    return BaseFacts(image, tuple(sorted(pythons.values(), key=lambda p: p.version)), default)


def facts_from_labels(image: str, labels: dict[str, str]) -> BaseFacts | None:
    if PYTHONS_LABEL not in labels:
        return None
    pythons = []
    for item in labels[PYTHONS_LABEL].split():
        version, _, path = item.partition("=")
        pythons.append(PythonInstall(version, path))
    return BaseFacts(image, tuple(pythons), labels.get(DEFAULT_PYTHON_LABEL))


def base_facts(engine: DockerEngine, image: str) -> BaseFacts:
    labels = engine.image_labels(image)
    if labels is None:
        raise ConfigError(
            f"the base image {image} is not on this Docker engine, and no registry can be reached to pull it; "
            "build the default one with `dsbuild base`, or `docker load` your own"
        )
    facts = facts_from_labels(image, labels)
    if facts is None:
        done = engine.exec_run(image, ["-c", _PROBE], entrypoint="/bin/sh")
        if done.returncode != 0:
            raise ConfigError(f"cannot look inside the base image {image}: is it a Debian-family image with /bin/sh?")
        facts = parse_probe(image, done.stdout.decode())
    image_id = (engine.inspect_image(image) or {}).get("Id", "")
    return replace(facts, image_id=image_id, suite=labels.get(BASE_SUITE_LABEL, ""))


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_apt_sources(texts: Iterable[str]) -> list[AptSource]:
    """Host apt sources, in deb822 (.sources) or one-line (.list) form (pure)."""
    found: list[AptSource] = []
    for text in texts:
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (l.partition(":") for l in stanza.splitlines() if ":" in l and not l.startswith("#"))
            )
            if fields.get("uris") and "deb" in fields.get("types", "deb").split():
                for uri in fields["uris"].split():
                    found.append(AptSource(uri, tuple(fields.get("suites", "").split()), tuple(fields.get("components", "main").split())))
        for line in text.splitlines():
            words = re.sub(r"\[[^\]]*\]", "", line).split()
            if len(words) >= 3 and words[0] == "deb":
                found.append(AptSource(words[1], (words[2],), tuple(words[3:]) or ("main",)))
    return found


def for_suite(sources: list[AptSource], suite: str) -> list[AptSource]:
    """The host's apt sources for `suite`: its own entries if it lists that release,
    otherwise its Debian entries for the release it runs, with the release's name
    replaced (the same mirror serves bullseye, bookworm and trixie)."""
    own = [s for s in sources if any(x == suite or x.startswith(f"{suite}-") for x in s.suites)]
    if own:
        return [AptSource(s.uri, tuple(x for x in s.suites if x == suite or x.startswith(f"{suite}-")), s.components) for s in own]
    found = []
    for source in sources:
        suites = tuple(
            suite + x[len(host):] for x in source.suites for host in KNOWN_SUITES if x == host or x.startswith(f"{host}-")
        )
        if suites:
            found.append(AptSource(source.uri, suites, source.components))
    return found


def mirror_for(sources: list[AptSource], suite: str) -> str:
    for source in for_suite(sources, suite):
        if suite in source.suites and source.uri.startswith(("http://", "https://")):
            return source.uri
    raise ConfigError(f"no Debian apt source on this machine to build a {suite} base from (looked in /etc/apt/sources.list*)")


def sources_list(sources: list[AptSource], suite: str) -> str:
    """The base image's sources.list: the host's entries for that suite and its updates."""
    lines = [f"deb {s.uri} {x} {' '.join(s.components)}" for s in for_suite(sources, suite) for x in s.suites]
    return "\n".join(dict.fromkeys(lines)) + "\n"


def read_host_apt_sources() -> list[AptSource]:
    paths = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    return parse_apt_sources(p.read_text(errors="replace") for p in paths if p.is_file())


def build_default_base(engine: DockerEngine, ref: str, suite: str = DEFAULT_SUITE, say: Callable[[str], None] = print) -> str:
    """debootstrap a minimal Debian with Python 3, trim it, and import it as `ref`."""
    if suite not in SUITE_PYTHONS:
        raise ConfigError(f"no base image for Debian {suite!r}; dsbuild builds {', '.join(SUITE_PYTHONS)}")
    if shutil.which("debootstrap") is None:
        raise EngineUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    sources = read_host_apt_sources()
    mirror = mirror_for(sources, suite)
    with tempfile.TemporaryDirectory(prefix="dsbuild-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        say(f"debootstrap {suite} from the host's mirror into {root}")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES + SUITE_PACKAGES.get(suite, ()))}", suite, str(root), mirror]
        done = subprocess.run(cmd, capture_output=True)
        if done.returncode != 0:
            last = done.stdout.decode(errors="replace").strip().splitlines()[-3:]
            raise EngineUnavailable(f"debootstrap failed: {' '.join(last)}")
        _trim(root, sources_list(sources, suite))
        facts = parse_probe(ref, _probe_rootfs(root))
        changes = [
            f"LABEL {PYTHONS_LABEL}=\"{' '.join(f'{p.version}={p.path}' for p in facts.pythons)}\"",
            f"LABEL {DEFAULT_PYTHON_LABEL}={facts.default_python}",
            f"LABEL {BASE_SUITE_LABEL}={suite}",
            "ENV LANG=C.UTF-8",
            'CMD ["/bin/bash"]',
        ]
        say(f"importing {ref}")
        tarball = Path(tmp) / "rootfs.tar"
        import tarfile  # only here: a CLI start does not pay for it

        with tarfile.open(tarball, "w") as tar:
            tar.add(root, arcname=".")
        with open(tarball, "rb") as handle:
            return engine.import_rootfs(handle, ref, changes)


def _trim(root: Path, sources: str) -> None:
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/dsbuild-slim").write_text(DPKG_EXCLUDES)
    (root / "etc/apt/sources.list").write_text(sources)
    for old in (root / "etc/apt/sources.list.d").glob("*"):
        old.unlink()
    for folder in ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "var/log"):
        target = root / folder
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir(parents=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    for doc in (root / "usr/share/doc").glob("*/*"):
        if doc.name != "copyright":
            shutil.rmtree(doc) if doc.is_dir() and not doc.is_symlink() else doc.unlink()
    locale = root / "usr/share/locale"
    for entry in locale.glob("*"):
        if entry.name != "locale.alias":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _probe_rootfs(root: Path) -> str:
    lines = []
    for folder in ("usr/bin", "usr/local/bin"):
        for path in sorted((root / folder).glob("python3.*")):
            if re.search(r"python3\.\d+$", path.name):
                lines.append(f"py /{folder}/{path.name}")
    default = (root / "usr/bin/python3")
    if default.is_symlink():
        lines.append(f"default /usr/bin/{Path(default.readlink()).name}")
    return "\n".join(lines)
