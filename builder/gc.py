"""Garbage collection: git mirrors, build contexts, images and BuildKit's cache, by age
and disk use.

`plan_removals` is pure (what to remove, given what there is); `collect_garbage` is the
I/O, used by `dsbuild gc` and callable by the launch service (e.g. once an hour). A
context folder being built is skipped (its lock is held); an image a container uses
is kept (removed without --force); only images dsbuild built (its options label) are
candidates, never base images. `collect_registry_garbage` makes the same decisions for
the images in a registry (`dsbuild gc --registry`, the Helm chart's registry cleaner)
and deletes them through the registry API."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from . import registry as reg
from .registry_images import ImageRef, get_blob, get_manifest
from .engine import DockerEngine

BUILT_LABEL = "io.dsbuild.options-hash"
USED_MARK = "dsbuild-used"  # touched in a mirror each time it is used


@dataclass(frozen=True)
class GcPolicy:
    max_age: float = 7 * 86400  # seconds since last use
    max_bytes: int | None = 50 * 2**30  # per kind (mirrors, contexts, images); oldest go first
    images: bool = True
    only_images: str | None = None  # a `docker images --filter reference=` pattern, to narrow
    build_cache: bool = True  # also BuildKit's cache (the engine's, shared by whatever builds on it)
    dry_run: bool = False


@dataclass(frozen=True)
class Entry:
    key: str  # a path or an image id
    last_used: float
    size: int
    label: str = ""  # what to print


@dataclass
class GcReport:
    removed: list[Entry] = field(default_factory=list)
    kept: int = 0
    freed: int = 0
    build_cache_freed: int = 0


def plan_removals(entries: Sequence[Entry], now: float, max_age: float, max_bytes: int | None) -> list[Entry]:
    """Entries older than max_age, then the oldest of the rest until under max_bytes (pure)."""
    ordered = sorted(entries, key=lambda e: e.last_used)
    remove = [e for e in ordered if now - e.last_used > max_age]
    rest = [e for e in ordered if now - e.last_used <= max_age]
    total = sum(e.size for e in rest)
    while max_bytes is not None and rest and total > max_bytes:
        oldest = rest.pop(0)
        remove.append(oldest)
        total -= oldest.size
    return remove


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (links not followed; what vanishes meanwhile is skipped)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _folders(root: Path, mark: str) -> list[Entry]:
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            marker = child / mark
            used = marker.stat().st_mtime if marker.exists() else child.stat().st_mtime
            found.append(Entry(str(child), used, tree_bytes(child), child.name))
    return found


def _remove_folder(path: Path, lock_name: str | None) -> bool:
    """Remove a folder unless a build holds its lock."""
    if lock_name and (path / lock_name).exists():
        with open(path / lock_name, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            shutil.rmtree(path, ignore_errors=True)
            return True
    shutil.rmtree(path, ignore_errors=True)
    return True


def iso_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as Docker and registries write it
    ("2024-06-01T12:00:00.123456789Z", UTC); 0.0 (oldest) when missing or unreadable."""
    try:
        return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return 0.0


def registry_image_entry(host: str, name: str, tags: Sequence[str], digest: str, manifest: dict, config: dict) -> Entry | None:
    """One image in a registry as a gc candidate (pure): keyed by NAME@DIGEST (deleting
    it removes all its tags), dated by its build, sized by its layers. None for what
    dsbuild did not build (no options label), and for manifest lists."""
    labels = (config.get("config") or {}).get("Labels") or {}
    if not digest or BUILT_LABEL not in labels or "layers" not in manifest:
        return None
    size = sum(int(layer.get("size") or 0) for layer in manifest["layers"])
    return Entry(f"{name}@{digest}", iso_time(config.get("created") or ""), size,
                 f"{host}/{name}:{','.join(sorted(tags))}")


def registry_images(registry: reg.Registry, only: str | None = None, auth: str | None = None) -> list[Entry]:
    """The registry's dsbuild images, tags of one digest together (I/O)."""
    entries = []
    for name in reg.list_repositories(registry, auth):
        if only and not name.startswith(only):
            continue
        by_digest: dict[str, tuple[list[str], dict, dict]] = {}
        for tag in reg.list_tags(registry, name, auth):
            ref = ImageRef(registry, name, tag)
            manifest = get_manifest(ref, follow_index=False)  # a list is no candidate (no layers)
            if manifest is None:
                continue
            config_digest = (manifest.data.get("config") or {}).get("digest")
            config = json.loads(get_blob(ref, config_digest)) if config_digest else {}
            by_digest.setdefault(manifest.digest, ([], manifest.data, config))[0].append(tag)
        for digest, (tags, manifest, config) in by_digest.items():
            entry = registry_image_entry(registry.host, name, tags, digest, manifest, config)
            if entry is not None:
                entries.append(entry)
    return entries


def collect_registry_garbage(registry: reg.Registry, policy: GcPolicy = GcPolicy(), now: float | None = None,
                             auth: str | None = None) -> GcReport:
    """Delete the registry's dsbuild images that `policy` says are old or over budget
    (sizes add up each image's layers, so shared layers count more than once). The
    registry frees the blobs at its own garbage-collect."""
    now = time.time() if now is None else now
    report = GcReport()
    images = registry_images(registry, policy.only_images, auth)
    removals = plan_removals(images, now, policy.max_age, policy.max_bytes)
    report.kept = len(images) - len(removals)
    for entry in removals:
        name, digest = entry.key.split("@", 1)
        if policy.dry_run or reg.delete_manifest(registry, name, digest, auth):
            report.removed.append(entry)
            report.freed += entry.size
    return report


def dsbuild_images(engine: DockerEngine, only: str | None = None) -> list[Entry]:
    filters = [f"label={BUILT_LABEL}"] + ([f"reference={only}"] if only else [])
    entries: dict[str, Entry] = {}
    in_use = engine.images_in_use()  # kept whatever their age: a container is made from them
    for ref in engine.image_refs(filters):
        info = engine.inspect_image(ref) or {}
        if info.get("Id") not in in_use:
            entries[ref] = Entry(ref, iso_time(info.get("Created", "")), int(info.get("Size") or 0), ref)
    return list(entries.values())


def collect_garbage(cache: Path, engine: DockerEngine | None, policy: GcPolicy = GcPolicy(), now: float | None = None) -> GcReport:
    """Remove what `policy` says is old or over budget; returns what went."""
    now = time.time() if now is None else now
    report = GcReport()
    kinds = [(_folders(cache / "git", USED_MARK), None), (_folders(cache / "contexts", ".lock"), ".lock")]
    for entries, lock_name in kinds:
        removals = plan_removals(entries, now, policy.max_age, policy.max_bytes)
        report.kept += len(entries) - len(removals)
        for entry in removals:
            if policy.dry_run or _remove_folder(Path(entry.key), lock_name):
                report.removed.append(entry)
                report.freed += entry.size
    if policy.images and engine is not None:
        images = dsbuild_images(engine, policy.only_images)
        removals = plan_removals(images, now, policy.max_age, policy.max_bytes)
        report.kept += len(images) - len(removals)
        for entry in removals:
            if policy.dry_run or engine.remove_unused_image(entry.key):
                report.removed.append(entry)
                report.freed += entry.size
    if policy.build_cache and engine is not None and not policy.dry_run:
        report.build_cache_freed = engine.prune_build_cache(policy.max_age, policy.max_bytes)
        report.freed += report.build_cache_freed
    return report


def mark_used(folder: Path) -> None:
    """Record that a mirror was used now (gc goes by this)."""
    try:
        (folder / USED_MARK).touch()
    except OSError:
        pass


def parse_age(text: str) -> float:
    """`30m`, `12h`, `7d` or seconds -> seconds (pure)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise ValueError(f"not an age: {text!r} (use 30m, 12h or 7d)") from None


def parse_bytes(text: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use 500m or 50g)") from None


